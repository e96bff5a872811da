"""Tests for scalesim.tiny_model: the built directory loads offline with transformers and peft.

Every load passes ``local_files_only=True``, so a test fails rather than downloads; run the
module with ``HF_HUB_OFFLINE=1`` as well.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from scalesim.tiny_model import (
    MANIFEST_NAME,
    TinyModel,
    TinyModelSize,
    ensure_tiny_model,
    make_tiny_model,
)

_PROMPT = "The agent walked to the market in the morning and met a friend"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", n_loras=2)


def _logits(model: torch.nn.Module, input_ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor([input_ids])).logits  # type: ignore[no-any-return]


def test_names_two_adapters_under_loras(tiny: TinyModel) -> None:
    assert tiny.adapters == ("lora-0", "lora-1")
    assert tiny.adapter_paths == (tiny.path / "loras/lora-0", tiny.path / "loras/lora-1")
    assert all((path / "adapter_model.safetensors").is_file() for path in tiny.adapter_paths)
    assert tiny.sglang_lora_paths()[1] == f"lora-1={tiny.path / 'loras/lora-1'}"


def test_loads_offline_and_runs_forward(tiny: TinyModel) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny.path, local_files_only=True)
    config = AutoConfig.from_pretrained(tiny.path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(tiny.path, local_files_only=True)
    assert config.vocab_size == len(tokenizer)
    assert 2000 <= len(tokenizer) <= 4000
    assert config.max_position_embeddings == 4096
    assert model.dtype == torch.float32
    input_ids = tokenizer(_PROMPT)["input_ids"]
    assert _logits(model, input_ids).shape == (1, len(input_ids), len(tokenizer))
    assert tokenizer.decode(input_ids) == _PROMPT


def test_chat_template_renders_roles_and_generation_prompt(tiny: TinyModel) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny.path, local_files_only=True)
    messages = [
        {"role": "system", "content": "You are Ada."},
        {"role": "user", "content": "Where are you going?"},
    ]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == (
        "<|bos|><|system|>\nYou are Ada.<|eos|>\n"
        "<|user|>\nWhere are you going?<|eos|>\n<|assistant|>\n"
    )
    closed = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    assert isinstance(closed, str)
    assert not closed.endswith("<|assistant|>\n")


def test_prompts_sharing_leading_words_share_leading_tokens(tiny: TinyModel) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny.path, local_files_only=True)
    prefix_ids = tokenizer(_PROMPT)["input_ids"]
    for suffix in (" called Bob.", " today, then went home", " zqxj 42"):
        assert tokenizer(_PROMPT + suffix)["input_ids"][: len(prefix_ids)] == prefix_ids


def test_adapters_change_output_and_differ(tiny: TinyModel) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny.path, local_files_only=True)
    input_ids = tokenizer(_PROMPT)["input_ids"]
    base = AutoModelForCausalLM.from_pretrained(tiny.path, local_files_only=True)
    base_logits = _logits(base, input_ids)
    adapter_logits = []
    for path in tiny.adapter_paths:
        fresh = AutoModelForCausalLM.from_pretrained(tiny.path, local_files_only=True)
        adapted = PeftModel.from_pretrained(fresh, path, local_files_only=True)
        adapter_logits.append(_logits(adapted, input_ids))
    for logits in adapter_logits:
        assert not torch.allclose(logits, base_logits, atol=1e-4)
    assert not torch.allclose(adapter_logits[0], adapter_logits[1], atol=1e-4)


def test_ensure_reuses_a_complete_directory(tiny: TinyModel, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny.path, tmp_path / "model")
    before = (copy / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model(copy, n_loras=2) == TinyModel(
        copy, tiny.adapters, tuple(copy / "loras" / name for name in tiny.adapters)
    )
    assert (copy / "model.safetensors").stat().st_mtime_ns == before


def test_ensure_rebuilds_a_directory_without_manifest(tiny: TinyModel, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny.path, tmp_path / "model")
    (copy / MANIFEST_NAME).unlink()
    inode_before = copy.stat().st_ino
    ensure_tiny_model(copy, n_loras=2)
    assert copy.stat().st_ino != inode_before
    assert (copy / MANIFEST_NAME).is_file()
    assert (copy / "tokenizer.json").read_bytes() == (tiny.path / "tokenizer.json").read_bytes()


def test_ensure_rebuilds_when_settings_differ(tiny: TinyModel, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny.path, tmp_path / "model")
    rebuilt = ensure_tiny_model(copy, n_loras=1, size=TinyModelSize.TINY)
    assert rebuilt.adapters == ("lora-0",)
    assert sorted(path.name for path in (copy / "loras").iterdir()) == ["lora-0"]


def test_refuses_to_replace_a_directory_with_foreign_files(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"notes\.txt"):
        make_tiny_model(target)
    assert (target / "notes.txt").read_text() == "keep me"
    assert [path.name for path in tmp_path.iterdir()] == ["model"]
