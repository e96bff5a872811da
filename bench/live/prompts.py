"""Prompt text for a live replay: equal segment ids give equal token runs of the stated lengths.

Who calls it: ``bench/live/run.py`` builds one :class:`PromptWriter` from the served model's
``tokenizer.json`` and asks it for each call's text, sent as a plain ``/v1/completions``
prompt (no chat template, so nothing comes between segments).

How: the tiny model's tokenizer is byte-level BPE whose pre-tokenizer cuts text before every
space-led run of letters, so a word ``" w"`` that is a single vocabulary entry encodes to that
one token wherever it stands. A segment of n tokens is n such words; word i is chosen by
``segment_token(seg, i, len(pool))`` (trace-format rule: token i depends on (seg, i) alone).

Invariants: ``text(call)`` encodes to exactly ``call.prompt_tokens`` tokens (checked for the
whole pool when it is built), and prompts that begin with the same segments share exactly
those segments' tokens.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..trace import Call, Segment, segment_token

#: ByteLevel shows a leading space as "Ġ"; only lower-case letter words are used.
_WORD_TOKEN = re.compile(r"Ġ([a-z]+)")
_MIN_WORDS = 64


class WordPool:
    """Words that each encode to one token, also when concatenated (ordered by token id)."""

    def __init__(self, words: tuple[str, ...]) -> None:
        if len(words) < _MIN_WORDS:
            raise ValueError(f"need at least {_MIN_WORDS} single-token words, got {len(words)}")
        self.words = words

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> WordPool:
        """The pool of a ``tokenizers.Tokenizer``, verified on the concatenation of all words.

        Raises:
            ValueError: the tokenizer does not encode the pool word by word (not the tiny
                model's kind of tokenizer); live prompts would not have the trace's lengths.
        """
        found: list[tuple[int, str]] = []
        for token, token_id in tokenizer.get_vocab().items():
            match = _WORD_TOKEN.fullmatch(token)
            if match and tokenizer.encode(" " + match.group(1)).ids == [token_id]:
                found.append((token_id, match.group(1)))
        found.sort()
        pool = cls(tuple(word for _, word in found))
        expected = [token_id for token_id, _ in found]
        if tokenizer.encode("".join(" " + word for word in pool.words)).ids != expected:
            raise ValueError("the tokenizer merges across words: prompt lengths would drift")
        return pool

    @classmethod
    def from_file(cls, tokenizer_json: Path) -> WordPool:
        """The pool of a model folder's ``tokenizer.json``."""
        from tokenizers import Tokenizer

        return cls.from_tokenizer(Tokenizer.from_file(str(tokenizer_json)))

    def word(self, seg: str, index: int) -> str:
        """Word ``index`` of segment ``seg``."""
        return self.words[segment_token(seg, index, len(self.words))]


class PromptWriter:
    """Text of trace prompts; segment texts are built once and reused."""

    def __init__(self, pool: WordPool) -> None:
        self.pool = pool
        self._texts: dict[tuple[str, int], str] = {}

    def segment_text(self, segment: Segment) -> str:
        """``segment.n_tokens`` space-led words: exactly that many tokens."""
        key = (segment.seg, segment.n_tokens)
        text = self._texts.get(key)
        if text is None:
            words = (self.pool.word(segment.seg, i) for i in range(segment.n_tokens))
            text = "".join(" " + word for word in words)
            self._texts[key] = text
        return text

    def text(self, call: Call) -> str:
        """The whole prompt of ``call``: its segments' texts, concatenated."""
        return "".join(self.segment_text(segment) for segment in call.prompt)
