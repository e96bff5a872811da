"""End to end: the ``scalesim`` policy keeps the agent that calls next; stock SGLang loses it.

The scenario of issue 8: a 2,048-token device pool, twelve agents with ~400-token personas, and
agent a0 declared as the next caller. Eleven other agents then pass through the pool; a0's
repeat call finds its prefix cached under ScaleSim and recomputes it under stock SGLang (LRU).
a0 is declared next through its own ``next_call``, then (another set of agents) through the
control endpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_helpers import serving
from openai import OpenAI

from scalesim.server_process import RunningServer
from scalesim.tiny_model import ensure_tiny_model

pytestmark = pytest.mark.e2e

MODEL_NAME = "tiny"
POOL_TOKENS = 2048
AGENTS = 12
_WORDS = ("town", "market", "house", "friend", "garden", "river", "cafe")
_POLICY_ARGS = {
    "stock": ["--scalesim-disable"],
    "scalesim": ["--radix-eviction-policy", "scalesim"],
}


@pytest.fixture(scope="module", params=sorted(_POLICY_ARGS))
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    server_log_path: Path,
) -> Iterator[tuple[str, RunningServer]]:
    model = ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=0)
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--max-total-tokens", str(POOL_TOKENS), *_POLICY_ARGS[request.param]]
    with serving(args, log_path=server_log_path) as running:
        yield request.param, running


def persona(agent: int) -> str:
    """About 400 tokens of text that no other agent's persona shares."""
    words = (f"{_WORDS[(agent + j) % len(_WORDS)]}{(agent * 31 + j) % 97}" for j in range(150))
    return f"agent {agent} " + " ".join(words)


def ask(client: OpenAI, agent: int, meta: dict[str, object]) -> tuple[int, int]:
    """One call of ``agent`` with ``custom_params.scalesim = meta``: (prompt, cached) tokens."""
    response = client.chat.completions.create(
        model=MODEL_NAME,
        messages=[
            {"role": "system", "content": persona(agent)},
            {"role": "user", "content": "What do you do next?"},
        ],
        max_tokens=2,
        temperature=0.0,
        extra_body={"custom_params": {"scalesim": meta}},
    )
    usage = response.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    return usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens or 0


def test_agent_declared_next_keeps_its_prefix(server: tuple[str, RunningServer]) -> None:
    policy, running = server
    client = OpenAI(base_url=running.openai_base_url, api_key="unused", max_retries=0)
    prompt, _ = ask(client, 0, {"agent": "a0", "namespace": "town", "clock": 0, "next_call": 12})
    assert AGENTS * prompt > 2 * POOL_TOKENS  # the pool holds far fewer than twelve personas
    for agent in range(1, AGENTS):
        ask(client, agent, {"agent": f"a{agent}", "namespace": "town", "clock": agent})
    prompt, cached = ask(client, 0, {"agent": "a0", "namespace": "town", "clock": 12})
    if policy == "scalesim":
        assert cached >= prompt - 2
    else:
        assert cached < prompt // 10


def test_agent_declared_next_through_the_endpoint_keeps_its_prefix(
    server: tuple[str, RunningServer],
) -> None:
    """The same scenario, with a0 declared next by ``POST /scalesim/v1/distances`` (agents
    20-31, whose personas share nothing with the first scenario's)."""
    policy, running = server
    if policy == "stock":
        pytest.skip("stock SGLang has no control endpoint; its side is the scenario above")
    client = OpenAI(base_url=running.openai_base_url, api_key="unused", max_retries=0)
    first, last = 20, 20 + AGENTS
    ask(client, first, {"agent": f"a{first}", "namespace": "ep", "clock": 0})
    update = {"namespace": "ep", "clock": 0, "version": 1, "next_call": {f"a{first}": 12}}
    response = httpx.post(f"{running.base_url}/scalesim/v1/distances", json=update, timeout=60)
    assert response.status_code == 200, response.text
    for agent in range(first + 1, last):
        ask(client, agent, {"agent": f"a{agent}", "namespace": "ep", "clock": agent - first})
    prompt, cached = ask(client, first, {"agent": f"a{first}", "namespace": "ep", "clock": 12})
    assert cached >= prompt - 2
