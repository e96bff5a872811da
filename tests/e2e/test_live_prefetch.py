"""End to end: host-tier prefetch under ``scalesim serve`` with HiCache (CPU mode without a GPU).

a0's prefix goes to the host tier while nothing is known about a0 and other agents are due;
then the simulation declares a0 next. The scheduler must queue a0's prefix for loading back
before a0 calls (seen in the state endpoint's counters), and a0's call must find it cached.
The same counters appear on SGLang's ``/metrics`` (``--enable-metrics``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_helpers import serving
from openai import OpenAI
from test_scalesim_policy import AGENTS, MODEL_NAME, POOL_TOKENS, ask

from scalesim.server_process import RunningServer
from scalesim.tiny_model import ensure_tiny_model

pytestmark = pytest.mark.e2e

_DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_log_path: Path
) -> Iterator[RunningServer]:
    model = ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=0)
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--max-total-tokens", str(POOL_TOKENS), "--radix-eviction-policy", "scalesim"]
    args += ["--enable-hierarchical-cache", "--hicache-ratio", "4", "--enable-metrics"]
    with serving(args, log_path=server_log_path) as running:
        yield running


def _counters(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/scalesim/v1/state")
    assert response.status_code == 200, response.text
    counters: dict[str, Any] = response.json()["counters"]
    return counters


def test_nearest_agent_is_prefetched_before_its_call(server: RunningServer) -> None:
    client = OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0)
    with httpx.Client(base_url=server.base_url, timeout=60.0) as http:
        prompt, _ = ask(client, 0, {"agent": "a0", "namespace": "p", "clock": 0})
        for agent in range(1, AGENTS):
            ask(client, agent, {"agent": f"a{agent}", "namespace": "p", "clock": 0, "next_call": 5})
        assert _counters(http)["kv_prefetch_tokens"] == 0
        update = {"namespace": "p", "clock": 1, "next_call": {"a0": 2}}
        assert http.post("/scalesim/v1/distances", json=update).status_code == 200
        deadline = time.monotonic() + _DEADLINE_S
        while _counters(http)["kv_prefetch_tokens"] == 0:
            assert time.monotonic() < deadline, "a0's prefix was never prefetched"
            time.sleep(0.2)
        prefetched = _counters(http)["kv_prefetch_tokens"]
        assert prompt - 10 <= prefetched <= prompt + 2
        _, cached = ask(client, 0, {"agent": "a0", "namespace": "p", "clock": 2})
        assert cached >= prompt - 2
        counters = _counters(http)
        assert counters["kv_prefetch_failures"] == 0
        assert counters["evicted_device_tokens"] > 0  # a0's prefix left the device first
        deadline = time.monotonic() + _DEADLINE_S
        while _metric(http, "scalesim_kv_prefetch_tokens_total") != prefetched:
            assert time.monotonic() < deadline, "metrics never caught up with the counters"
            time.sleep(0.2)
        evicted = _metric(http, "scalesim_evicted_tokens_total", label='tier="device"')
        assert evicted is not None and evicted >= counters["evicted_device_tokens"] > 0
        assert _metric(http, "scalesim_agents") == AGENTS


def _metric(http: httpx.Client, name: str, *, label: str = "") -> float | None:
    """The value of the first ``/metrics`` sample of ``name`` whose labels hold ``label``."""
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    for line in response.text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.split("{", 1)[0] == name and label in sample:
            return float(value)
    return None
