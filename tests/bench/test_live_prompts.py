"""Live prompt synthesis against the tiny model's real tokenizer: exact lengths, shared prefixes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from scalesim.bench.live.prompts import PromptWriter, WordPool
from scalesim.bench.trace import Call, Segment
from tokenizers import Tokenizer

from scalesim.tiny_model import ensure_tiny_model


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = ensure_tiny_model(tmp_path_factory.mktemp("tiny") / "model", n_loras=0)
    return model.path / "tokenizer.json"


@pytest.fixture(scope="module")
def tokenizer(tokenizer_json: Path) -> Tokenizer:
    return Tokenizer.from_file(str(tokenizer_json))


@pytest.fixture(scope="module")
def writer(tokenizer: Tokenizer) -> PromptWriter:
    return PromptWriter(WordPool.from_tokenizer(tokenizer))


def call(call_id: str, *segments: tuple[str, int]) -> Call:
    prompt = tuple(Segment(seg, n_tokens) for seg, n_tokens in segments)
    return Call(call_id, "a1", 0, prompt, output_len=4)


def common_prefix(left: list[int], right: list[int]) -> int:
    n = 0
    while n < min(len(left), len(right)) and left[n] == right[n]:
        n += 1
    return n


def test_prompts_sharing_segments_share_exactly_that_token_prefix(
    tokenizer: Tokenizer, writer: PromptWriter
) -> None:
    shared = (("sys/town", 400), ("persona/a1", 317), ("mem/a1/v3", 205))
    first = call("c1", *shared, ("obs/c1", 90))
    second = call("c2", *shared, ("obs/c2", 57))
    first_ids = tokenizer.encode(writer.text(first)).ids
    second_ids = tokenizer.encode(writer.text(second)).ids
    assert common_prefix(first_ids, second_ids) == 400 + 317 + 205


@pytest.mark.parametrize("lengths", [(1,), (400, 650, 240, 90), (7, 1500, 3)])
def test_prompt_lengths_are_the_trace_lengths(
    tokenizer: Tokenizer, writer: PromptWriter, lengths: tuple[int, ...]
) -> None:
    segments = tuple((f"seg/{i}", n) for i, n in enumerate(lengths))
    assert len(tokenizer.encode(writer.text(call("c", *segments))).ids) == sum(lengths)


def test_a_segment_id_fixes_token_i_whatever_the_length(
    tokenizer: Tokenizer, writer: PromptWriter
) -> None:
    short = tokenizer.encode(writer.text(call("c1", ("mem/a2/v1", 30)))).ids
    long = tokenizer.encode(writer.text(call("c2", ("mem/a2/v1", 80)))).ids
    assert long[:30] == short


def test_different_segments_differ_and_text_is_deterministic(
    tokenizer: Tokenizer, writer: PromptWriter
) -> None:
    one = writer.text(call("c1", ("persona/a1", 50)))
    other = writer.text(call("c2", ("persona/a2", 50)))
    assert one != other
    assert PromptWriter(writer.pool).text(call("c3", ("persona/a1", 50))) == one


class _MergingTokenizer:
    """A tokenizer whose vocabulary has single-token words that merge when concatenated."""

    def __init__(self) -> None:
        self.vocab = {f"Ġw{'x' * i}": i for i in range(80)}

    def get_vocab(self) -> dict[str, int]:
        return self.vocab

    def encode(self, text: str) -> Any:
        class _Encoding:
            ids = [self.vocab["Ġ" + text[1:]]] if text.count(" ") == 1 else [0]

        return _Encoding()


def test_a_tokenizer_that_merges_across_words_is_refused() -> None:
    with pytest.raises(ValueError, match="merges across words"):
        WordPool.from_tokenizer(_MergingTokenizer())


def test_a_pool_needs_enough_words() -> None:
    with pytest.raises(ValueError, match="at least"):
        WordPool(("a", "b"))


def test_the_pool_of_the_model_file(tokenizer_json: Path, writer: PromptWriter) -> None:
    assert WordPool.from_file(tokenizer_json).words == writer.pool.words
    assert len(writer.pool.words) > 500
