"""End to end: ``scalesim cluster`` with 2 CPU workers and the tiny model behind sglang-router.

One module-scoped cluster (affinity routing, ``--radix-eviction-policy scalesim``) serves every
test; the last test kills a worker, so the order matters. Checked against the real servers and
the real router: each agent's repeat call is served from the cache of the worker that served
its first call; a distance update sent to the cluster URL reaches every worker (and ranks the
agents' paths where they live); killing one worker is reported, the worker leaves the router,
and every agent's calls and the updates keep working.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import torch

from scalesim.client import ScaleSim
from scalesim.cluster import ClusterOptions, RunningCluster, WorkerEvent, running_cluster
from scalesim.server_process import ServerStartError
from scalesim.tiny_model import ensure_tiny_model

pytestmark = pytest.mark.e2e

MODEL_NAME = "tiny"
NAMESPACE = "town-1"
AGENTS = tuple(f"a{i}" for i in range(8))
#: A repeat served from the agent's own worker finds all but the last token or two in cache;
#: on the other worker it would find none of it (every prompt starts with its agent's id).
CACHED_SHARE = 0.9


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    model = ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=0)
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--radix-eviction-policy", "scalesim"]
    args += [] if torch.cuda.is_available() else ["--device", "cpu"]
    log_dir = tmp_path_factory.mktemp("cluster-logs")
    options = ClusterOptions(workers=2, log_dir=log_dir, startup_timeout_s=600)
    try:
        with running_cluster(options, args, report=lambda event: None) as running:
            yield running
    except ServerStartError as err:
        logs = "".join(f"\n--- {p}\n{p.read_text()[-4000:]}" for p in sorted(log_dir.glob("*.log")))
        pytest.fail(f"{err}{logs}")


def _prompt(agent: str) -> str:
    return " ".join(f"{agent} walks to the market and buys item {k}." for k in range(24))


def _complete(sim: ScaleSim, agent: str, *, clock: float) -> tuple[int, int]:
    """One call as ``agent`` through the cluster URL; (prompt tokens, cached tokens)."""
    reply = sim.openai.completions.create(
        model=MODEL_NAME,
        prompt=_prompt(agent),
        max_tokens=1,
        temperature=0.0,
        extra_headers=sim.routing_headers(agent),
        extra_body=sim.extra_body(agent, clock=clock),
    )
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    return reply.usage.prompt_tokens, reply.usage.prompt_tokens_details.cached_tokens or 0


def _worker_state(url: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{url}/scalesim/v1/state", timeout=30).json()
    return body


def _router_workers(cluster: RunningCluster) -> list[str]:
    listed = httpx.get(f"{cluster.url}/workers", timeout=10).json()["workers"]
    return [str(worker["url"]) for worker in listed]


def test_each_agents_repeat_call_is_served_from_its_workers_cache(
    cluster: RunningCluster,
) -> None:
    with ScaleSim(cluster.url, namespace=NAMESPACE, model=MODEL_NAME) as sim:
        for agent in AGENTS:
            _complete(sim, agent, clock=1)
        repeats = {agent: _complete(sim, agent, clock=2) for agent in AGENTS}
    for agent, (prompt_tokens, cached) in repeats.items():
        assert cached >= CACHED_SHARE * prompt_tokens, (agent, prompt_tokens, cached)
    # each agent's path lives on exactly one worker: a repeat routed elsewhere would own a
    # second path there
    owners = [_worker_state(url)["path_owners"] for url in cluster.worker_urls]
    assert sum(owners) == len(AGENTS), owners


def test_distances_through_the_cluster_url_reach_every_worker(cluster: RunningCluster) -> None:
    # the router itself does not forward ScaleSim's routes: the client fans them out
    direct = httpx.post(f"{cluster.url}/scalesim/v1/distances", json={}, timeout=10)
    assert direct.status_code == 404
    with ScaleSim(cluster.url, namespace=NAMESPACE, model=MODEL_NAME) as sim:
        reply = sim.tick(3, dict.fromkeys(AGENTS, 4.0))
        merged = sim.state(NAMESPACE)
    assert reply.applied == len(AGENTS)
    states = [_worker_state(url) for url in cluster.worker_urls]
    for url, state in zip(cluster.worker_urls, states, strict=True):
        (info,) = [ns for ns in state["namespaces"] if ns["name"] == NAMESPACE]
        assert info["version"] == reply.version and info["agents"] == len(AGENTS), url
        if state["path_owners"]:  # the agents living here now rank as near on this worker
            assert state["tokens"]["device"]["near"] > 0, (url, state["tokens"])
    assert merged.path_owners == sum(state["path_owners"] for state in states)
    (info,) = merged.namespaces
    assert info.version == reply.version and info.clock == 3.0


def test_killing_a_worker_keeps_the_cluster_serving(cluster: RunningCluster) -> None:
    owners = {url: _worker_state(url)["path_owners"] for url in cluster.worker_urls}
    victim = max(cluster.local, key=lambda worker: owners[worker.url])
    os.killpg(victim.process.pid, signal.SIGKILL)
    _wait_for(lambda: _event(cluster.monitor.events, victim.url, "removed"), timeout_s=60)
    assert _event(cluster.monitor.events, victim.url, "exited")
    assert _router_workers(cluster) == [u for u in cluster.worker_urls if u != victim.url]
    with ScaleSim(cluster.url, namespace=NAMESPACE, model=MODEL_NAME) as sim:
        for agent in AGENTS:  # the victim's agents re-route: their state is gone, not their calls
            _complete(sim, agent, clock=5)
        repeats = {agent: _complete(sim, agent, clock=6) for agent in AGENTS}
        reply = sim.tick(7, dict.fromkeys(AGENTS, 8.0))
    for agent, (prompt_tokens, cached) in repeats.items():
        assert cached >= CACHED_SHARE * prompt_tokens, (agent, prompt_tokens, cached)
    (survivor,) = [url for url in cluster.worker_urls if url != victim.url]
    state = _worker_state(survivor)
    assert state["path_owners"] == len(AGENTS)
    (info,) = [ns for ns in state["namespaces"] if ns["name"] == NAMESPACE]
    assert info["version"] == reply.version


def _event(events: list[WorkerEvent], url: str, kind: str) -> bool:
    return any(event.url == url and event.kind == kind for event in events)


def _wait_for(condition: Any, *, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
