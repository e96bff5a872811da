"""End to end: HiCache's host tier under ``scalesim serve`` (CPU mode without a GPU).

A device pool too small for five agents' prompts pushes the first agent's prefix to the host
tier; its next request must report that prefix as cached (loaded back), with the same output.
On CPU this runs through the development layer's transfer op, streams and host registration.
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
_DEVICE_POOL_TOKENS = 1024
_WORDS = ("town", "market", "house", "friend", "garden", "river", "cafe")


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_log_path: Path
) -> Iterator[RunningServer]:
    model = ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=0)
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--enable-hierarchical-cache", "--hicache-ratio", "8"]
    args += ["--max-total-tokens", str(_DEVICE_POOL_TOKENS)]
    with serving(args, log_path=server_log_path) as running:
        yield running


def _persona(agent: int) -> str:
    words = (f"{_WORDS[(agent + j) % len(_WORDS)]}{(agent * 31 + j) % 97}" for j in range(270))
    return f"agent {agent} " + " ".join(words)


def _ask(client: OpenAI, agent: int, question: str) -> tuple[str | None, int, int]:
    response = client.chat.completions.create(
        model=MODEL_NAME,
        messages=[
            {"role": "system", "content": _persona(agent)},
            {"role": "user", "content": question},
        ],
        max_tokens=4,
        temperature=0.0,
    )
    usage = response.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    return response.choices[0].message.content, usage.prompt_tokens, cached


def test_prefix_evicted_to_host_is_loaded_back(server: RunningServer) -> None:
    client = OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0)
    first_output, first_prompt, _ = _ask(client, 0, "next?")
    assert first_prompt > _DEVICE_POOL_TOKENS // 2
    for agent in range(1, 5):
        _ask(client, agent, "next?")
    output, prompt, cached = _ask(client, 0, "next?")
    assert cached >= 0.9 * prompt
    assert output == first_output
