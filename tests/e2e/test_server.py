"""End to end: the real SGLang server under ``scalesim serve`` (CPU mode without a GPU).

One server for the module, driven with the official ``openai`` client: a chat completion, the
radix cache reporting a repeated prefix as cached, and two LoRA adapters by ``base:adapter``.
The server's process group is killed even when a test fails; its log is attached on failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_helpers import serving
from openai import OpenAI

from scalesim.server_process import RunningServer
from scalesim.tiny_model import ensure_tiny_model

pytestmark = pytest.mark.e2e

MODEL_NAME = "tiny"
_ADAPTERS = 2


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_log_path: Path
) -> Iterator[RunningServer]:
    model = ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=_ADAPTERS)
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--enable-lora", "--lora-paths", *model.sglang_lora_paths()]
    args += ["--max-loras-per-batch", "2"]
    with serving(args, log_path=server_log_path) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> OpenAI:
    return OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0)


def _chat(client: OpenAI, model: str, system: str, user: str) -> tuple[str, int, int]:
    response = client.chat.completions.create(
        model=model,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
        max_tokens=8,
        temperature=0.0,
        extra_body={"custom_params": {"scalesim": {"agent": "a0"}}},
    )
    assert response.usage is not None
    details = response.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens is not None
    content = response.choices[0].message.content
    assert content is not None
    return content, response.usage.prompt_tokens, details.cached_tokens


def test_chat_completion(client: OpenAI) -> None:
    response = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "hello town"}], max_tokens=8
    )
    assert response.choices[0].message.content
    assert response.usage is not None and response.usage.completion_tokens > 0


def test_repeated_prefix_is_served_from_the_radix_cache(client: OpenAI) -> None:
    prefix = "You are agent seven. Your memories: " + "the market opens early and " * 40
    _, first_prompt, first_cached = _chat(client, MODEL_NAME, prefix, "what next?")
    _, second_prompt, second_cached = _chat(client, MODEL_NAME, prefix, "and after that?")
    assert first_cached < first_prompt // 10
    assert second_cached >= 0.8 * second_prompt


def test_two_adapters_by_model_suffix(client: OpenAI) -> None:
    prefix = "You are agent eight. " + "the library is quiet in the evening " * 10
    outputs = [_chat(client, f"{MODEL_NAME}:lora-{i}", prefix, "next?")[0] for i in range(2)]
    base_output = _chat(client, MODEL_NAME, prefix, "next?")[0]
    assert outputs[0] != outputs[1]
    assert base_output not in outputs
