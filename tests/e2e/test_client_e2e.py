"""End to end: the client SDK (api.md section 3) against the real server in CPU mode.

One module-scoped server runs ``--radix-eviction-policy scalesim`` with one LoRA adapter and
no API key. Checked here: chat with agent metadata (base model discovered from ``/v1/models``,
``adapter=`` mapped to ``base:adapter``) completes and reaches the runtime; a tick shows up in
the state snapshot; re-sending an applied version is harmless; a local refusal carries the
server's own message. Fault injection (timeouts, lost replies) is unit-tested in
``tests/client`` against a stand-in, where it can be provoked deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from e2e_helpers import serving

from scalesim.client import (
    AsyncScaleSim,
    Delivery,
    ScaleSim,
    ScaleSimConflictError,
    ScaleSimHTTPError,
    ScaleSimValidationError,
    TickReply,
)
from scalesim.server_process import RunningServer
from scalesim.tiny_model import ensure_tiny_model

pytestmark = pytest.mark.e2e

MODEL_NAME = "tiny"
_PROMPT: list[Any] = [{"role": "user", "content": "the baker opens the shop before dawn " * 4}]


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, server_log_path: Path
) -> Iterator[RunningServer]:
    model = ensure_tiny_model(tmp_path_factory.mktemp("model"), n_loras=1)
    args = ["--model-path", str(model.path), "--served-model-name", MODEL_NAME]
    args += ["--radix-eviction-policy", "scalesim"]
    args += ["--enable-lora", "--lora-paths", *model.sglang_lora_paths()]
    args += ["--max-loras-per-batch", "1"]
    with serving(args, log_path=server_log_path) as running:
        yield running


def test_chat_with_agent_metadata_returns_a_completion(server: RunningServer) -> None:
    with ScaleSim(server.base_url, namespace="chat-1") as sim:
        reply = sim.chat("a17", _PROMPT, adapter="lora-0", clock=3, next_call=4, max_tokens=4)
        base = sim.chat("a18", _PROMPT, clock=3, next_call=5, max_tokens=4, temperature=0.0)
        assert reply.choices[0].finish_reason is not None
        assert base.choices[0].finish_reason is not None and base.model == MODEL_NAME
        chunks = list(sim.chat("a19", _PROMPT, clock=4, next_call=6, max_tokens=2, stream=True))
        assert chunks and chunks[-1].choices[-1].finish_reason is not None
        extra = sim.extra_body("a20", clock=4, next_call=7)  # metadata for any other route
        completion = sim.openai.completions.create(
            model=MODEL_NAME, prompt="the baker", max_tokens=2, extra_body=extra
        )
        assert completion.choices[0].finish_reason is not None
        info = sim.state("chat-1").find("chat-1")
    assert info is not None and (info.clock, info.version, info.agents) == (4.0, None, 4)


def test_a_chat_that_lost_its_metadata_is_owned_through_the_routing_key(
    server: RunningServer,
) -> None:
    """Behind sglang-router a chat body loses ``custom_params``; the SDK's routing-key header
    (``namespace|agent``) still reaches the scheduler and names the owner of its path."""
    with ScaleSim(server.base_url, namespace="routed-1") as sim:
        sim.openai.chat.completions.create(
            model=MODEL_NAME,
            messages=_PROMPT,
            max_tokens=2,
            extra_headers=sim.routing_headers("a5"),
        )
        snapshot = sim.state("routed-1")
    assert snapshot.find("routed-1") is not None and snapshot.path_owners == 1


def test_the_async_client_chats_and_ticks_the_same_way(server: RunningServer) -> None:
    async def scenario() -> TickReply:
        async with AsyncScaleSim(server.base_url, namespace="async-1", first_version=1) as sim:
            reply = await sim.chat("a1", _PROMPT, adapter="lora-0", next_call=2, max_tokens=2)
            assert reply.choices[0].finish_reason is not None
            return await sim.tick(1, {"a1": 2, "a2": None})

    assert asyncio.run(scenario()) == TickReply("async-1", 2, 1, 1.0, Delivery.APPLIED)


def test_tick_then_state_shows_the_clock_version_and_agents(server: RunningServer) -> None:
    with ScaleSim(server.base_url, namespace="town-1") as sim:
        reply = sim.tick(312, {"a17": 340, "a18": None, "a19": 313.5}, unknown=["a20"])
        assert (reply.namespace, reply.applied, reply.clock) == ("town-1", 3, 312.0)
        assert reply.version is not None and reply.delivery is Delivery.APPLIED
        snapshot = sim.state("town-1")
        assert snapshot.agents == 3
        info = snapshot.find("town-1")
        assert info is not None and (info.clock, info.version) == (312.0, reply.version)
        assert "town-1" in [entry.name for entry in sim.state().namespaces]


def test_a_duplicate_version_is_harmless(server: RunningServer) -> None:
    with ScaleSim(server.base_url, namespace="dup-1") as sim:
        first = sim.tick(10, {"a1": 12, "a2": 15})
        before = sim.state("dup-1")
        again = sim.tick(10, {"a1": 12, "a2": 15}, version=first.version)  # a retried tick
        assert again == TickReply("dup-1", None, first.version, 10.0, Delivery.ALREADY_APPLIED)
        after = sim.state("dup-1")
        assert after.namespaces == before.namespaces
        applied = after.counters["distance_updates"] - before.counters["distance_updates"]
        assert applied == 0  # the duplicate changed nothing
        assert sim.tick(11, {"a1": 12}).delivery is Delivery.APPLIED
    assert first.version is not None
    with ScaleSim(server.base_url, namespace="dup-1", first_version=0) as other:
        with pytest.raises(ScaleSimConflictError) as err:  # never sent by this client
            other.tick(12, {"a1": 13})
        assert err.value.status == 409 and "not newer" in err.value.message


def test_drop_namespace_forgets_it(server: RunningServer) -> None:
    with ScaleSim(server.base_url, namespace="gone-1") as sim:
        sim.tick(1, {"a1": 2, "a2": 3})
        dropped = sim.drop_namespace()
        assert (dropped.namespace, dropped.agents, dropped.delivery) == (
            "gone-1",
            2,
            Delivery.APPLIED,
        )
        with pytest.raises(ScaleSimHTTPError) as err:
            sim.state("gone-1")
        assert err.value.status == 404


_REFUSED: list[tuple[Any, Any]] = [(5, 4), (-1, None), (None, "soon"), (True, None)]


@pytest.mark.parametrize(("clock", "next_call"), _REFUSED)
def test_a_local_refusal_carries_the_servers_own_message(
    server: RunningServer, clock: Any, next_call: Any
) -> None:
    with ScaleSim(server.base_url, namespace="refused-1", model=MODEL_NAME) as sim:
        with pytest.raises(ScaleSimValidationError) as local:
            sim.chat("a1", _PROMPT, clock=clock, next_call=next_call, max_tokens=2)
        meta = {"agent": "a1", "namespace": "refused-1", "clock": clock, "next_call": next_call}
        sent = {key: value for key, value in meta.items() if value is not None}
        with pytest.raises(openai.BadRequestError) as remote:  # the same metadata, sent raw
            sim.openai.chat.completions.create(
                model=MODEL_NAME,
                messages=_PROMPT,
                max_tokens=2,
                extra_body={"custom_params": {"scalesim": sent}},
            )
    assert str(local.value) in remote.value.message
