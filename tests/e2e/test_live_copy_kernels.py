"""End to end: HiCache KV copies and LoRA slot loads on ScaleSim's kernels give SGLang's outputs.

The same requests run on two real servers (CPU mode without a GPU, the Triton interpreter on
the copy path): one with SGLang's own copies (``copy_kernels`` default) and one with
``{"copy_kernels": "triton"}``. Both have a HiCache host tier under a device pool too small for
all agents' prompts (agent 0's prefix goes to the host and is loaded back) and three adapters
in two slots (the base model's included), so every adapter call reloads a slot. Greedy outputs
and their log-probabilities must be identical, and the ScaleSim server's log must show that
every kind of copy ran on the kernels and none fell back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_helpers import serving
from openai import OpenAI

from scalesim.tiny_model import TinyModel, ensure_tiny_model

pytestmark = pytest.mark.e2e

MODEL_NAME = "tiny"
_DEVICE_POOL_TOKENS = 1024
_WORDS = ("town", "market", "house", "friend", "garden", "river", "cafe")
#: (agent, adapter or None): agent 0's prefix is evicted to the host by agents 1-4, then reused.
_CALLS = ((0, None), (1, 0), (2, 1), (3, 2), (4, None), (0, None), (1, 0), (2, 1))
_KINDS = ("kv_backup", "kv_load", "lora")


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=3)


def _args(model: TinyModel, config: Path) -> list[str]:
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--enable-hierarchical-cache", "--hicache-ratio", "8"]
    args += ["--max-total-tokens", str(_DEVICE_POOL_TOKENS)]
    args += ["--enable-lora", "--lora-paths", *model.sglang_lora_paths()]
    args += ["--max-loras-per-batch", "2", "--scalesim-config", str(config), "--enable-metrics"]
    return args


def _persona(agent: int) -> str:
    words = (f"{_WORDS[(agent + j) % len(_WORDS)]}{(agent * 31 + j) % 97}" for j in range(270))
    return f"agent {agent} " + " ".join(words)


Reply = tuple[str | None, list[float], int]


def _ask(client: OpenAI, agent: int, adapter: int | None) -> Reply:
    response = client.chat.completions.create(
        model=MODEL_NAME if adapter is None else f"{MODEL_NAME}:lora-{adapter}",
        messages=[
            {"role": "system", "content": _persona(agent)},
            {"role": "user", "content": "next?"},
        ],
        max_tokens=4,
        temperature=0.0,
        logprobs=True,
    )
    choice = response.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    usage = response.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    return choice.message.content, [t.logprob for t in choice.logprobs.content], cached


def _run_workload(
    model: TinyModel, config: dict[str, str], *, tmp_path: Path
) -> tuple[list[Reply], str]:
    """The calls on a fresh server with ``config``; their replies, then the server's log and
    its ``/metrics`` (read after the calls, once the copy counters were published)."""
    config_path = tmp_path / "scalesim.json"
    config_path.write_text(json.dumps(config), encoding="utf-8")
    log_path = tmp_path / "scalesim-serve.log"
    with serving(_args(model, config_path), log_path=log_path) as server:
        client = OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0)
        replies = [_ask(client, agent, adapter) for agent, adapter in _CALLS]
        _ask(client, 0, None)  # one more scheduler iteration publishes the last counts
        metrics = httpx.get(f"{server.base_url}/metrics", timeout=60.0).text
    log = log_path.read_text(encoding="utf-8", errors="replace")
    return replies, log + metrics


def _copies(metrics: str, kind: str, path: str) -> float:
    """``scalesim_copy_kernel_copies_total{kind, path}`` summed over its label sets."""
    labels = rf'kind="{kind}"[^}}]*path="{path}"'
    series = rf"^scalesim_copy_kernel_copies_total\{{[^}}]*{labels}[^}}]*\}} (\S+)$"
    pattern = re.compile(series, re.M)
    return sum(float(value) for value in pattern.findall(metrics))


@pytest.fixture(scope="module")
def interpreted() -> Iterator[None]:
    """``TRITON_INTERPRET=1`` for the servers (inherited by their processes)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRITON_INTERPRET", "1")
        yield


@pytest.fixture(scope="module")
def stock(
    model: TinyModel, interpreted: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Reply], str]:
    return _run_workload(model, {}, tmp_path=tmp_path_factory.mktemp("sglang-copies"))


@pytest.fixture(scope="module")
def ours(
    model: TinyModel, interpreted: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[list[Reply], str]:
    config = {"copy_kernels": "triton"}
    return _run_workload(model, config, tmp_path=tmp_path_factory.mktemp("triton-copies"))


def test_outputs_identical_to_sglangs_own_copies(
    stock: tuple[list[Reply], str], ours: tuple[list[Reply], str]
) -> None:
    stock_replies, _ = stock
    our_replies, _ = ours
    assert our_replies == stock_replies
    _, _, cached = stock_replies[5]
    assert cached > _DEVICE_POOL_TOKENS // 2  # agent 0's prefix came back from the host tier


def test_every_copy_ran_on_the_kernels(
    stock: tuple[list[Reply], str], ours: tuple[list[Reply], str]
) -> None:
    _, stock_log = stock
    _, our_log = ours
    for kind in _KINDS:
        assert f"scalesim copy kernels: first {kind} ran on scalesim.kernels" in our_log
        assert _copies(our_log, kind, "triton") > 0  # and counted on /metrics
        assert _copies(our_log, kind, "fallback") == 0
        assert _copies(stock_log, kind, "triton") == 0
    assert "scalesim copy kernels" not in stock_log
    assert "on SGLang's path" not in our_log
