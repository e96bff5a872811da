"""End to end: GPU adapter slots ranked by distance and adapter prefetch, on the real server.

One server (CPU mode without a GPU): the tiny model with 12 adapters, 4 slots
(``--max-loras-per-batch 4``, the base model's included), ``--radix-eviction-policy scalesim``
with exact hints (``hint_trust: full``, so ranks follow the hints alone), and the LoRA policy
``scalesim serve`` selects by default when adapters are enabled. Agent ``aN`` calls with
adapter ``lora-N``. Loads are read from ``/metrics`` (``scalesim_lora_loads_total{kind}``) and
from ``GET /scalesim/v1/state``'s counters.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_helpers import serving
from openai import OpenAI

from scalesim.server_process import RunningServer
from scalesim.tiny_model import ensure_tiny_model

pytestmark = pytest.mark.e2e

MODEL_NAME = "tiny"
NAMESPACE = "lora-e2e"
_ADAPTERS = 12
_METRIC = re.compile(r'^scalesim_lora_loads_total\{[^}]*kind="(\w+)"[^}]*\} ([0-9.e+]+)$', re.M)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_log_path: Path
) -> Iterator[RunningServer]:
    model = ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=_ADAPTERS)
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--radix-eviction-policy", "scalesim"]
    args += ["--radix-eviction-policy-config", '{"hint_trust": "full"}']
    args += ["--enable-lora", "--lora-paths", *model.sglang_lora_paths()]
    args += ["--max-loras-per-batch", "4", "--enable-metrics"]
    with serving(args, log_path=server_log_path) as running:
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=60.0) as client:
        yield client


def _call(server: RunningServer, agent: int, *, clock: float, next_call: float) -> None:
    client = OpenAI(base_url=server.openai_base_url, api_key="unused", max_retries=0)
    meta = {"agent": f"a{agent}", "namespace": NAMESPACE, "clock": clock, "next_call": next_call}
    client.chat.completions.create(
        model=f"{MODEL_NAME}:lora-{agent}",
        messages=[{"role": "user", "content": f"agent {agent} speaks"}],
        max_tokens=2,
        temperature=0.0,
        extra_body={"custom_params": {"scalesim": meta}},
    )


def _counters(http: httpx.Client) -> dict[str, Any]:
    reply = http.get("/scalesim/v1/state")
    assert reply.status_code == 200, reply.text
    counters: dict[str, Any] = reply.json()["counters"]
    return counters


def _metric_loads(http: httpx.Client) -> dict[str, float]:
    loads: dict[str, float] = {}
    for kind, value in _METRIC.findall(http.get("/metrics").text):
        loads[kind] = loads.get(kind, 0.0) + float(value)
    return loads


def _wait_for(check: Any, *, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_near_adapter_is_kept_and_a_declared_next_one_is_prefetched(
    server: RunningServer, http: httpx.Client
) -> None:
    # a0 is next (clock 0 -> 1); a1..a5 call later (50). Slots: base + 3 adapters.
    _call(server, 0, clock=0, next_call=1)
    for agent in range(1, 6):
        _call(server, agent, clock=0, next_call=50)
    before = _counters(http)
    assert before["lora_loads_blocking"] == 6
    assert before["lora_loads_prefetch"] == 0
    _call(server, 0, clock=1, next_call=100)  # kept: LRU would have evicted lora-0 first
    assert _counters(http)["lora_loads_blocking"] == 6

    # lora-1 left its slot when a3 called; a1 is declared next: prefetched before its call.
    update = {"namespace": NAMESPACE, "clock": 2, "next_call": {"a1": 3}}
    assert http.post("/scalesim/v1/distances", json=update).status_code == 200
    assert _wait_for(lambda: _counters(http)["lora_loads_prefetch"] == 1)
    _call(server, 1, clock=3, next_call=60)
    after = _counters(http)
    assert after["lora_loads_blocking"] == 6
    assert after["lora_prefetch_failures"] == 0
    expected = {"blocking": 6.0, "prefetch": 1.0}
    assert _wait_for(lambda: _metric_loads(http) == expected), _metric_loads(http)
