"""Build the random-weight Llama model, tokenizer and LoRA adapters used by tests, demo and benches.

Called by ``scalesim make-tiny-model DIR --loras N`` (``scalesim.cli``) and by test fixtures.
Nothing is downloaded: the tokenizer is trained locally on a deterministic built-in corpus and
the weights are seeded random, so the same (size, seed, n_loras) always gives the same files.

Invariants:
- A directory holding ``scalesim-tiny-model.json`` is complete: everything is built in a
  sibling temporary directory, the manifest is written last, and the whole is renamed into
  place, so an interrupted build never looks complete.
- The model's ``vocab_size`` equals the tokenizer's vocabulary size.
- Tokenization is stable under concatenation at word boundaries (byte-level pre-tokenizer),
  so prompts sharing their first N words share their leading tokens: radix prefix caching works.
- Adapters are named ``lora-0`` … ``lora-{N-1}`` and live in ``DIR/loras/<name>/``; they target
  only the attention projections (SGLang's supported set) and are stored in float32.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

MANIFEST_NAME = "scalesim-tiny-model.json"
_MANIFEST_FORMAT = 1
_MAX_POSITION_EMBEDDINGS = 4096
_TARGET_VOCAB_SIZE = 3000
_LORA_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
_LORA_B_STD = 0.02

BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
PAD_TOKEN = "<|pad|>"
_ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

#: Renders each message as ``<|role|>\\ncontent<|eos|>\\n``; the eos ends an assistant turn.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)

_COMMON_WORDS = (
    "the a an and or but if then when while of to in on at by for with from about as into over "
    "after before under between through during without again once here there all any both each "
    "few more most other some such no not only own same so than too very can will just should "
    "now i you he she it we they me him her us them my your his its our their this that these "
    "those is are was were be been being have has had do does did say said go went see saw know "
    "think take make come give look find tell ask work seem feel try leave call keep let begin "
    "help talk turn start show hear play run move live believe bring happen write sit stand lose "
    "pay meet include continue set learn change lead understand watch follow stop create speak "
    "read spend grow open walk win offer remember love consider appear buy wait serve die send "
    "expect build stay fall cut reach kill remain agent memory plan goal town market house day "
    "night morning evening friend neighbour shop cafe park school library office street river "
    "garden kitchen table book letter story news idea question answer reason problem time year "
    "people way thing world life hand part child eye woman man place week case point number "
    "group family water room money fact month lot right study job word business issue side kind "
    "head service power hour game line end member law car city community name president team "
    "minute moment door health person art war history party result morning reflection persona "
    "observation conversation schedule weather coffee breakfast lunch dinner music painting"
)
_SYLLABLES = (
    "ba be bi bo bu ca ce ci co cu da de di do du fa fe fi fo ga ge go ha he hi ho ka ke ki ko "
    "la le li lo lu ma me mi mo mu na ne ni no nu pa pe pi po ra re ri ro ru sa se si so su ta "
    "te ti to tu va ve vi vo za ze zo ar er ir or en an in on el al il ol st tr th sh ch"
)
_PUNCTUATION = (".", ".", ".", ",", "?", "!", ";", ":")


class TinyModelSize(Enum):
    """Size preset: TINY for fast tests and the demo; BENCH so recompute costs more than a load."""

    TINY = "tiny"
    BENCH = "bench"

    @property
    def shape(self) -> ModelShape:
        """The transformer dimensions of this preset."""
        return _SHAPES[self]


@dataclass(frozen=True)
class ModelShape:
    """Llama dimensions of one size preset."""

    hidden_size: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    intermediate_size: int


_SHAPES = {
    TinyModelSize.TINY: ModelShape(64, 2, 4, 2, 128),
    TinyModelSize.BENCH: ModelShape(512, 8, 8, 4, 1408),
}


@dataclass(frozen=True)
class TinyModel:
    """A built model directory and its adapters (``adapters[i]`` is at ``adapter_paths[i]``)."""

    path: Path
    adapters: tuple[str, ...]
    adapter_paths: tuple[Path, ...]

    def sglang_lora_paths(self) -> tuple[str, ...]:
        """``name=path`` entries for SGLang's ``--lora-paths``."""
        return tuple(
            f"{name}={path}" for name, path in zip(self.adapters, self.adapter_paths, strict=True)
        )


def adapter_names(n_loras: int) -> tuple[str, ...]:
    """The adapter names a build with ``n_loras`` adapters writes: ``lora-0`` … ``lora-{n-1}``."""
    return tuple(f"lora-{index}" for index in range(n_loras))


def make_tiny_model(
    out_dir: Path,
    *,
    n_loras: int = 0,
    size: TinyModelSize = TinyModelSize.TINY,
    seed: int = 0,
) -> TinyModel:
    """Build the model into ``out_dir`` from scratch, replacing a previous build there.

    Args:
        out_dir: target directory; an existing one may only hold files a build writes.
        n_loras: number of LoRA adapters to write (``lora-0`` …).
        size: dimension preset.
        seed: seeds the weights; adapter ``i`` uses ``seed + 1 + i`` so adapters differ.
    """
    if n_loras < 0:
        raise ValueError(f"n_loras must be >= 0, got {n_loras}")
    out_dir = Path(out_dir).resolve()
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    tmp_dir.chmod(0o755)  # mkdtemp's 0o700 would hide the model from a server run as another user
    try:
        _build(tmp_dir, final_dir=out_dir, n_loras=n_loras, size=size, seed=seed)
        _replace_dir(out_dir, tmp_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return _describe(out_dir, n_loras)


def ensure_tiny_model(
    out_dir: Path,
    *,
    n_loras: int,
    size: TinyModelSize = TinyModelSize.TINY,
    seed: int = 0,
) -> TinyModel:
    """Reuse ``out_dir`` if it holds a complete build with these settings, else (re)build it."""
    out_dir = Path(out_dir).resolve()
    if _read_manifest(out_dir) == _manifest(n_loras=n_loras, size=size, seed=seed):
        return _describe(out_dir, n_loras)
    return make_tiny_model(out_dir, n_loras=n_loras, size=size, seed=seed)


def _describe(out_dir: Path, n_loras: int) -> TinyModel:
    names = adapter_names(n_loras)
    return TinyModel(out_dir, names, tuple(out_dir / "loras" / name for name in names))


def _manifest(*, n_loras: int, size: TinyModelSize, seed: int) -> dict[str, object]:
    return {
        "format": _MANIFEST_FORMAT,
        "size": size.value,
        "seed": seed,
        "adapters": list(adapter_names(n_loras)),
    }


def _read_manifest(out_dir: Path) -> object:
    """The parsed manifest, or None when absent or unreadable (the directory is then rebuilt)."""
    try:
        return json.loads((out_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def _replace_dir(out_dir: Path, new_dir: Path) -> None:
    """Move ``new_dir`` to ``out_dir``; refuse to delete a directory holding foreign files."""
    if out_dir.exists():
        ours = {entry.name for entry in new_dir.iterdir()}
        foreign = sorted(entry.name for entry in out_dir.iterdir() if entry.name not in ours)
        if foreign:
            raise FileExistsError(f"{out_dir} holds files a tiny-model build does not: {foreign}")
        shutil.rmtree(out_dir)
    new_dir.rename(out_dir)


def _build(
    build_dir: Path, *, final_dir: Path, n_loras: int, size: TinyModelSize, seed: int
) -> None:
    """Write tokenizer, base model, adapters and, last, the manifest into ``build_dir``."""
    tokenizer = _train_tokenizer(seed)
    tokenizer.save_pretrained(str(build_dir))
    model = _random_model(size.shape, tokenizer=tokenizer, seed=seed)
    model.save_pretrained(str(build_dir), safe_serialization=True)
    for index, name in enumerate(adapter_names(n_loras)):
        model = _save_adapter(
            model, build_dir / "loras" / name, base_path=final_dir, seed=seed + 1 + index
        )
    manifest = _manifest(n_loras=n_loras, size=size, seed=seed)
    (build_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def _corpus(seed: int, *, n_sentences: int = 4000) -> list[str]:
    """English-like sentences from common words and seeded pseudo-words (names, places)."""
    rng = random.Random(seed)
    common_words, syllables = _COMMON_WORDS.split(), _SYLLABLES.split()
    pseudo_words = sorted(
        {"".join(rng.choices(syllables, k=rng.randint(2, 4))) for _ in range(2500)}
    )
    sentences = []
    for _ in range(n_sentences):
        words = [
            rng.choice(pseudo_words) if rng.random() < 0.3 else rng.choice(common_words)
            for _ in range(rng.randint(4, 16))
        ]
        words[0] = words[0].capitalize()
        sentences.append(" ".join(words) + rng.choice(_PUNCTUATION))
    digits = [" ".join(str(rng.randint(0, 10_000)) for _ in range(8)) for _ in range(50)]
    return sentences + digits


def _train_tokenizer(seed: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (no unknown tokens, lossless decode) trained on ``_corpus``.

    torch, transformers, tokenizers and peft are imported inside the builders so that importing
    this module (the CLI does) stays fast.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(  # type: ignore[no-untyped-call]
        vocab_size=_TARGET_VOCAB_SIZE,
        special_tokens=[BOS_TOKEN, EOS_TOKEN, PAD_TOKEN, *_ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(_corpus(seed), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=list(_ROLE_TOKENS),
        model_max_length=_MAX_POSITION_EMBEDDINGS,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _random_model(
    shape: ModelShape, *, tokenizer: PreTrainedTokenizerFast, seed: int
) -> LlamaForCausalLM:
    """A seeded random-weight float32 ``LlamaForCausalLM`` sized to the tokenizer."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    special_ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.n_layers,
        num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_kv_heads,
        intermediate_size=shape.intermediate_size,
        max_position_embeddings=_MAX_POSITION_EMBEDDINGS,
        tie_word_embeddings=False,
        dtype="float32",
        **special_ids,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    model.generation_config = GenerationConfig(**special_ids)  # type: ignore[no-untyped-call]
    return model


def _save_adapter(
    model: LlamaForCausalLM, adapter_dir: Path, *, base_path: Path, seed: int
) -> LlamaForCausalLM:
    """Save a seeded LoRA adapter of ``model`` to ``adapter_dir``; return the unwrapped base model.

    peft initialises B to zero (a no-op adapter), so B is redrawn from a seeded normal to make
    every adapter change the output, and differently from the others.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    lora_config = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        bias="none",
        target_modules=list(_LORA_TARGET_MODULES),
        task_type="CAUSAL_LM",
    )
    torch.manual_seed(seed)
    peft_model = get_peft_model(model, lora_config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * _LORA_B_STD)
    # Point at where the base model will live, not at the temporary build directory.
    peft_model.peft_config["default"].base_model_name_or_path = str(base_path)
    peft_model.save_pretrained(
        str(adapter_dir), safe_serialization=True, save_embedding_layers=False
    )
    return cast("LlamaForCausalLM", peft_model.unload())
