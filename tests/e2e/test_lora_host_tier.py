"""End to end: adapters declared through the control API, and the host tier of adapters
(``--max-loaded-loras``) unloading the farthest agent's adapter instead of the least recent.

One server (CPU mode without a GPU): the tiny model, three of its five adapters loaded at start,
2 GPU slots (``--max-loras-per-batch 2``), 3 adapters in host memory (``--max-loaded-loras 3``),
exact hints (``hint_trust: full``). Agent ``aN`` uses adapter ``lora-N``, declared up front with
``POST /scalesim/v1/adapters`` (through the SDK's ``declare_adapters``). What host memory
holds is read from ``/v1/models``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_helpers import serving
from openai import OpenAI

from scalesim.client import ScaleSim
from scalesim.server_process import RunningServer
from scalesim.tiny_model import TinyModel, ensure_tiny_model

pytestmark = pytest.mark.e2e

MODEL_NAME = "tiny"
NAMESPACE = "lora-host"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=5)


@pytest.fixture(scope="module")
def server(model: TinyModel, server_log_path: Path) -> Iterator[RunningServer]:
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--radix-eviction-policy", "scalesim"]
    args += ["--radix-eviction-policy-config", '{"hint_trust": "full"}']
    args += ["--enable-lora", "--lora-paths", *model.sglang_lora_paths()[:3]]
    args += ["--max-loras-per-batch", "2", "--max-loaded-loras", "3"]
    with serving(args, log_path=server_log_path) as running:
        yield running


@pytest.fixture
def http(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=120.0) as client:
        yield client


def _in_host_memory(http: httpx.Client) -> set[str]:
    models = http.get("/v1/models").json()["data"]
    return {card["id"] for card in models if card["id"] != MODEL_NAME}


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


def test_malformed_declarations_are_refused(http: httpx.Client) -> None:
    reply = http.post("/scalesim/v1/adapters", json={"adapters": {"a 1": "lora-1"}})
    assert reply.status_code == 400 and "adapters key" in reply.json()["error"]
    reply = http.post("/scalesim/v1/adapters", json={"namespace": NAMESPACE, "clock": 1})
    assert reply.status_code == 400 and "clock" in reply.json()["error"]


def test_the_farthest_agents_adapter_goes_to_disk(
    server: RunningServer, http: httpx.Client, model: TinyModel
) -> None:
    with ScaleSim(server.base_url, namespace=NAMESPACE) as sim:  # the SDK's declaration
        assert sim.declare_adapters({f"a{index}": f"lora-{index}" for index in range(5)}) == 5
    update = {"namespace": NAMESPACE, "clock": 0, "next_call": {"a0": 1, "a1": 50, "a2": 10}}
    assert http.post("/scalesim/v1/distances", json=update).status_code == 200
    assert _in_host_memory(http) == {"lora-0", "lora-1", "lora-2"}

    # A fourth adapter: SGLang's LRU would unload lora-0 (loaded first, a0 calls next).
    load = {"lora_name": "lora-3", "lora_path": str(model.adapter_paths[3])}
    assert http.post("/load_lora_adapter", json=load).status_code == 200
    assert _in_host_memory(http) == {"lora-0", "lora-2", "lora-3"}

    # a0 calls (lora-0 is in host memory: no reload) and now calls again only at 100; a1's
    # call reloads lora-1 from disk, and the farthest left is lora-0 (LRU: lora-2).
    _call(server, 0, clock=1, next_call=100)
    update = {"namespace": NAMESPACE, "clock": 2, "next_call": {"a3": 20}}
    assert http.post("/scalesim/v1/distances", json=update).status_code == 200
    _call(server, 1, clock=2, next_call=60)
    assert _in_host_memory(http) == {"lora-1", "lora-2", "lora-3"}
