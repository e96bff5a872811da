"""The client SDK against a stand-in of ScaleSim's endpoints on a loopback port.

The stand-in (:class:`StandIn`) is a stdlib HTTP server that applies updates with the real
``ScaleSimRuntime`` and checks bodies with the real ``parse_distance_update``, so versions,
clocks and 409s behave as on the SGLang server; it can inject faults (a reply lost after the
update was applied, a timeout before it was, a dropped connection, 5xx). Every scenario that
talks to it runs on both clients (``flavor``: sync and async), which must behave identically.
The real server round trip is ``tests/e2e/test_client_e2e.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import inspect
import json
import math
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalesim.client import (
    AsyncScaleSim,
    Delivery,
    RetryPolicy,
    ScaleSim,
    ScaleSimConflictError,
    ScaleSimConnectionError,
    ScaleSimHTTPError,
    ScaleSimProtocolError,
    ScaleSimValidationError,
    StateSnapshot,
    TickReply,
    VersionBook,
    next_calls,
    next_calls_from_distances,
    unestimated,
)
from scalesim.client.plans import tick_plan
from scalesim.client.records import state_snapshot, tick_reply
from scalesim.client.retry import Backoff, HttpCall
from scalesim.client.wire import distance_update, scalesim_extra_body
from scalesim.distance import (
    ActionState,
    ActivationPaths,
    ActivationState,
    IndependentAgents,
    InteractingAgents,
    MetropolisRules,
    OutOfOrderAgents,
    SpatialAgent,
    StepAgent,
)
from scalesim.runtime import ContractError, ScaleSimRuntime, parse_agent_meta
from scalesim.runtime import parse_distance_update as server_parse_update
from scalesim.server_process import free_port

_T = TypeVar("_T")
_ADMIN_KEY = "admin-key"
_API_KEY = "user-key"
_FAST = RetryPolicy(attempts=3, backoff_s=0.0, timeout_s=10.0)
#: For the faults that hang: short enough to keep tests quick, long enough for a busy machine.
_IMPATIENT = RetryPolicy(attempts=3, backoff_s=0.0, timeout_s=1.5)
_MESSAGES: list[Any] = [{"role": "user", "content": "hello"}]


# ---- the stand-in server --------------------------------------------------------------------
class Fault(enum.Enum):
    """What the stand-in does to the next request of a path instead of answering normally."""

    REPLY_LOST = "apply, then hang past the client's timeout"
    HANG = "hang past the client's timeout, apply nothing"
    DROP = "close the connection without a reply, apply nothing"
    UNAVAILABLE = "answer 503, apply nothing"


@dataclass
class Seen:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class StandIn:
    """ScaleSim's control endpoints plus ``/v1/models`` and ``/v1/chat/completions``."""

    url: str = ""
    runtime: ScaleSimRuntime = field(default_factory=ScaleSimRuntime)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, method: str, path: str) -> list[Seen]:
        return [one for one in self.seen if one.method == method and one.path == path]

    def answer(self, seen: Seen, query: dict[str, list[str]]) -> tuple[int, Any] | Fault:
        with self.lock:
            self.seen.append(seen)
            queue = self.faults.get(seen.path)
            fault = queue.pop(0) if queue else None
            if fault in (Fault.HANG, Fault.DROP, Fault.UNAVAILABLE):
                return fault
            reply = self._route(seen, query)
        return fault if fault is Fault.REPLY_LOST else reply

    def _route(self, seen: Seen, query: dict[str, list[str]]) -> tuple[int, Any]:
        if seen.path == "/v1/models":
            cards: list[dict[str, Any]] = [
                {"id": "lora-0", "parent": "tiny"},
                {"id": "tiny", "parent": None},
            ]
            return 200, {"object": "list", "data": [_card(card) for card in cards]}
        if seen.path == "/v1/chat/completions":
            return 200, _completion(seen.body["model"])
        if seen.headers.get("authorization") != f"Bearer {_ADMIN_KEY}":
            return 401, {"error": "Unauthorized"}
        try:
            if seen.path == "/scalesim/v1/distances":
                result = self.runtime.apply(server_parse_update(seen.body))
                return 200, {**dataclasses.asdict(result)}
            if seen.path == "/scalesim/v1/state":
                return self._state(query.get("namespace", [None])[0])
            dropped = self.runtime.drop_namespace(seen.path.rsplit("namespaces/", 1)[1])
            if dropped is None:
                return 404, {"error": "unknown namespace"}
            body = {"namespace": dropped.namespace, "agents": dropped.agents}
            return 200, {**body, "path_owners": dropped.owners}
        except ContractError as err:
            return err.status, {"error": str(err)}

    def _state(self, namespace: str | None) -> tuple[int, Any]:
        states = [dataclasses.asdict(state) for state in self.runtime.namespaces()]
        if namespace is not None:
            states = [state for state in states if state["name"] == namespace]
            if not states:
                return 404, {"error": f"unknown namespace {namespace!r}"}
        tier = {"near": 0, "far": 0, "unknown": 0}
        return 200, {
            "namespaces": states,
            "agents": sum(state["agents"] for state in states),
            "path_owners": 0,
            "owned_nodes": 0,
            "tokens": {"device": tier, "host": tier},
            "counters": dataclasses.asdict(self.runtime.counters),
        }


def _card(card: dict[str, Any]) -> dict[str, Any]:
    return {**card, "object": "model", "created": 0, "owned_by": "sglang"}


def _completion(model: str) -> dict[str, Any]:
    message = {"role": "assistant", "content": "ok"}
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


def _handler(standin: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            seen = Seen(self.command, unquote(parts.path), json.loads(raw or b"null"), headers)
            outcome = standin.answer(seen, parse_qs(parts.query))
            if outcome in (Fault.HANG, Fault.REPLY_LOST):
                standin.release.wait(timeout=30.0)  # the client gave up long before
                return
            if outcome is Fault.DROP:
                self.close_connection = True
                return
            status, body = (
                (503, {"error": "no scheduler"}) if isinstance(outcome, Fault) else outcome
            )
            payload = json.dumps(body).encode()
            with contextlib.suppress(ConnectionError):  # the client may have given up
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def standin() -> Iterator[StandIn]:
    state = StandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


# ---- running one scenario on either client --------------------------------------------------
Client = ScaleSim | AsyncScaleSim


async def call(result: _T | Awaitable[_T]) -> _T:
    """A client call's value, whether the client is sync or async."""
    if inspect.isawaitable(result):
        return await result
    return result


def run(
    flavor: str, url: str, scenario: Callable[[Client], Awaitable[None]], **settings: Any
) -> None:
    """Build the ``flavor`` client inside one event loop, run ``scenario`` with it, close it."""
    options = {"namespace": "town-1", "admin_key": _ADMIN_KEY, "retry": _FAST, **settings}

    async def main() -> None:
        if flavor == "sync":
            with ScaleSim(url, **options) as sync_sim:
                await scenario(sync_sim)
        else:
            async with AsyncScaleSim(url, **options) as async_sim:
                await scenario(async_sim)

    asyncio.run(main())


@pytest.fixture(params=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> str:
    flavor_name: str = request.param
    return flavor_name


# ---- local validation = the server's rules --------------------------------------------------
_IDS = st.one_of(
    st.text(alphabet="ab1._:@/-", min_size=1, max_size=4),
    st.sampled_from(["", "a b", "a|b", "x" * 129, "x" * 128]),
    st.integers(),
    st.none(),
)
_TIMES = st.one_of(
    st.none(),
    st.integers(min_value=-3, max_value=30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["5", [1], {"x": 1}]),
)


def _outcome(parse: Callable[[], object]) -> tuple[str, int] | None:
    try:
        parse()
    except ContractError as err:
        return str(err), err.status
    return None


@settings(max_examples=300, deadline=None)
@given(agent=_IDS, namespace=_IDS, clock=_TIMES, next_call=_TIMES)
def test_metadata_is_refused_locally_exactly_when_the_server_refuses_it(
    agent: Any, namespace: Any, clock: Any, next_call: Any
) -> None:
    meta = {"agent": agent, "namespace": namespace, "clock": clock, "next_call": next_call}
    server = _outcome(lambda: parse_agent_meta({"scalesim": meta}))
    local = _outcome(
        lambda: scalesim_extra_body(agent, namespace=namespace, clock=clock, next_call=next_call)
    )
    assert local == server


@settings(max_examples=300, deadline=None)
@given(
    clock=_TIMES,
    next_call=st.one_of(st.dictionaries(_IDS, _TIMES, max_size=4), _TIMES),
    unknown=st.one_of(st.lists(_IDS, max_size=3), st.none()),
    version=st.one_of(st.integers(min_value=-2, max_value=5), st.booleans()),
)
def test_updates_are_refused_locally_exactly_when_the_server_refuses_them(
    clock: Any, next_call: Any, unknown: Any, version: Any
) -> None:
    body = {"namespace": "town-1", "clock": clock, "version": version, "next_call": next_call}
    body["unknown"] = unknown
    server = _outcome(lambda: server_parse_update(body))
    local = _outcome(
        lambda: distance_update(
            namespace="town-1", clock=clock, version=version, next_call=next_call, unknown=unknown
        )
    )
    assert local == server


def test_validation_errors_are_value_errors_naming_the_field_and_send_nothing(
    standin: StandIn, flavor: str
) -> None:
    async def scenario(sim: Client) -> None:
        with pytest.raises(ScaleSimValidationError, match=r"scalesim\.next_call") as err:
            await call(sim.chat("a1", _MESSAGES, clock=5, next_call=4))
        assert isinstance(err.value, ValueError) and err.value.status == 400
        with pytest.raises(ScaleSimValidationError, match=r"next_call\['a2'\]"):
            await call(sim.tick(10, {"a1": 12, "a2": 9}))
        with pytest.raises(ScaleSimValidationError, match="both next_call and unknown"):
            await call(sim.tick(10, {"a1": 12}, unknown=["a1"]))
        with pytest.raises(ScaleSimValidationError, match="not a string"):
            await call(sim.tick(10, {}, unknown="a1"))
        with pytest.raises(ScaleSimValidationError, match="adapter"):
            await call(sim.chat("a1", _MESSAGES, adapter=""))
        with pytest.raises(ScaleSimValidationError, match="set by the client"):
            extra = {"custom_params": {"scalesim": {"agent": "a1"}}}
            await call(sim.chat("a1", _MESSAGES, extra_body=extra))
        with pytest.raises(ScaleSimValidationError, match=r"adapters\['a1'\]"):
            await call(sim.declare_adapters({"a1": ""}))
        with pytest.raises(ScaleSimValidationError, match="adapters key"):
            await call(sim.declare_adapters({"a 1": "lora-1"}))

    run(flavor, standin.url, scenario)
    assert standin.seen == []
    with pytest.raises(ScaleSimValidationError, match="namespace"):
        ScaleSim(standin.url, namespace="town 1")


# ---- chat: the extra_body shape, the model name, the keys -----------------------------------
def test_chat_sends_the_metadata_merged_into_the_callers_extra_body(
    standin: StandIn, flavor: str
) -> None:
    async def scenario(sim: Client) -> None:
        extra = {"custom_params": {"mine": "kept"}, "top_k": 5}
        reply = await call(
            sim.chat("a17", _MESSAGES, adapter="a17", clock=312, next_call=340, extra_body=extra)
        )
        assert reply.choices[0].message.content == "ok"
        await call(sim.chat("a18", _MESSAGES, max_tokens=3))
        await call(sim.chat("a19", _MESSAGES, model="other", adapter="x"))

    run(flavor, standin.url, scenario, api_key=_API_KEY)
    assert len(standin.requests("GET", "/v1/models")) == 1  # discovered once, lazily
    first, second, third = standin.requests("POST", "/v1/chat/completions")
    meta = {"agent": "a17", "namespace": "town-1", "clock": 312, "next_call": 340}
    assert first.body["custom_params"] == {"mine": "kept", "scalesim": meta}
    assert first.body["top_k"] == 5 and first.body["messages"] == _MESSAGES
    assert first.body["model"] == "tiny:a17"  # the first *base* model listed, plus the adapter
    assert second.body["model"] == "tiny" and second.body["max_tokens"] == 3
    assert second.body["custom_params"] == {"scalesim": {"agent": "a18", "namespace": "town-1"}}
    assert third.body["model"] == "other:x"
    assert {one.headers["authorization"] for one in standin.seen} == {f"Bearer {_API_KEY}"}


def test_control_calls_send_the_admin_key_else_the_api_key(standin: StandIn) -> None:
    with ScaleSim(standin.url, api_key=_API_KEY, admin_key=_ADMIN_KEY, retry=_FAST) as sim:
        sim.tick(1, {})
    with ScaleSim(standin.url, api_key=_ADMIN_KEY, retry=_FAST) as sim:
        sim.tick(2, {})
    with ScaleSim(standin.url, retry=_FAST) as sim, pytest.raises(ScaleSimHTTPError) as err:
        sim.tick(3, {})
    assert err.value.status == 401 and err.value.message == "Unauthorized"
    posts = standin.requests("POST", "/scalesim/v1/distances")
    assert len(posts) == 3  # a 4xx is not retried
    assert [post.headers.get("authorization") for post in posts] == [
        f"Bearer {_ADMIN_KEY}",
        f"Bearer {_ADMIN_KEY}",
        None,
    ]


# ---- tick, state, drop: replies and versions ------------------------------------------------
def test_tick_state_and_drop_return_typed_records(standin: StandIn, flavor: str) -> None:
    async def scenario(sim: Client) -> None:
        reply = await call(sim.tick(312, {"a17": 340, "a18": None, "a19": 313.5}, unknown=["a20"]))
        assert reply == TickReply("town-1", 3, 7, 312.0, Delivery.APPLIED)
        snapshot = await call(sim.state("town-1"))
        assert isinstance(snapshot, StateSnapshot) and snapshot.agents == 3
        info = snapshot.find("town-1")
        assert info is not None and (info.clock, info.version, info.agents) == (312.0, 7, 3)
        assert snapshot.counters["distance_updates"] == 3
        dropped = await call(sim.drop_namespace())
        assert (dropped.namespace, dropped.agents, dropped.delivery) == (
            "town-1",
            3,
            Delivery.APPLIED,
        )
        with pytest.raises(ScaleSimHTTPError) as err:
            await call(sim.state("town-1"))
        assert err.value.status == 404
        with pytest.raises(ScaleSimHTTPError) as err:
            await call(sim.drop_namespace())
        assert err.value.status == 404

    run(flavor, standin.url, scenario, first_version=7)
    body = standin.requests("POST", "/scalesim/v1/distances")[0].body
    expected = {"a17": 340.0, "a18": None, "a19": 313.5}
    assert body == {
        "namespace": "town-1",
        "clock": 312.0,
        "version": 7,
        "next_call": expected,
        "unknown": ["a20"],
    }


def test_versions_increase_per_namespace_and_follow_explicit_ones(
    standin: StandIn, flavor: str
) -> None:
    async def scenario(sim: Client) -> None:
        versions = [(await call(sim.tick(1, {}))).version for _ in range(3)]
        assert versions == [5, 6, 7]
        assert (await call(sim.tick(2, {}, version=100))).version == 100
        assert (await call(sim.tick(3, {}))).version == 101
        assert (await call(sim.tick(1, {}, namespace="town-2"))).version == 5

    run(flavor, standin.url, scenario, first_version=5)


def test_a_fresh_client_never_collides_with_an_older_clients_versions(
    standin: StandIn, flavor: str
) -> None:
    async def older(sim: Client) -> None:
        for clock in range(50):
            await call(sim.tick(clock, {"a1": clock + 1}))

    async def fresh(sim: Client) -> None:
        reply = await call(sim.tick(60, {"a1": 61}))
        assert reply.delivery is Delivery.APPLIED

    run(flavor, standin.url, older)
    run(flavor, standin.url, fresh)  # time-based versions: above every version sent before


def test_time_based_versions_are_strictly_increasing_within_one_microsecond() -> None:
    book = VersionBook(wall_clock_us=lambda: 1_000)
    assert [book.next("ns") for _ in range(3)] == [1_000, 1_001, 1_002]
    book.observe("ns", 5_000)
    assert book.next("ns") == 5_001 and book.next("other") == 1_000


# ---- retries: same version, 409 for an applied version counts as applied --------------------
def test_a_lost_reply_is_retried_with_the_same_version_and_counts_as_applied(
    standin: StandIn, flavor: str
) -> None:
    standin.faults["/scalesim/v1/distances"] = [Fault.REPLY_LOST]

    async def scenario(sim: Client) -> None:
        reply = await call(sim.tick(10, {"a1": 12, "a2": 15}))
        assert reply == TickReply("town-1", None, 3, 10.0, Delivery.ALREADY_APPLIED)

    run(flavor, standin.url, scenario, first_version=3, retry=_IMPATIENT)
    first, retry = standin.requests("POST", "/scalesim/v1/distances")
    assert first.body == retry.body and first.body["version"] == 3
    assert standin.runtime.counters.distance_updates == 2  # applied once, not twice
    assert standin.runtime.counters.rejected_updates == 1  # the retry's 409


@pytest.mark.parametrize("fault", [Fault.HANG, Fault.DROP, Fault.UNAVAILABLE])
def test_an_attempt_that_applied_nothing_is_retried_with_the_same_version(
    standin: StandIn, flavor: str, fault: Fault
) -> None:
    standin.faults["/scalesim/v1/distances"] = [fault, fault]

    async def scenario(sim: Client) -> None:
        reply = await call(sim.tick(10, {"a1": 12}))
        assert reply == TickReply("town-1", 1, 3, 10.0, Delivery.APPLIED)

    run(flavor, standin.url, scenario, first_version=3, retry=_IMPATIENT)
    posts = standin.requests("POST", "/scalesim/v1/distances")
    assert len(posts) == 3 and all(post.body == posts[0].body for post in posts)


def test_retries_are_bounded(standin: StandIn, flavor: str) -> None:
    standin.faults["/scalesim/v1/distances"] = [Fault.UNAVAILABLE] * 3

    async def scenario(sim: Client) -> None:
        with pytest.raises(ScaleSimHTTPError) as err:
            await call(sim.tick(10, {"a1": 12}))
        assert err.value.status == 503 and err.value.message == "no scheduler"
        # The failed tick's version may have been applied: re-sending it is safe.
        reply = await call(sim.tick(10, {"a1": 12}, version=3))
        assert reply.delivery is Delivery.APPLIED and reply.version == 3

    run(flavor, standin.url, scenario, first_version=3)
    assert len(standin.requests("POST", "/scalesim/v1/distances")) == 4


def test_re_sending_an_applied_version_is_harmless(standin: StandIn, flavor: str) -> None:
    async def scenario(sim: Client) -> None:
        first = await call(sim.tick(10, {"a1": 12}))
        again = await call(sim.tick(10, {"a1": 12}, version=first.version))
        assert again == TickReply("town-1", None, first.version, 10.0, Delivery.ALREADY_APPLIED)

    run(flavor, standin.url, scenario)
    assert standin.runtime.counters.distance_updates == 1


def test_a_409_for_a_version_this_client_never_sent_is_a_conflict(
    standin: StandIn, flavor: str
) -> None:
    async def scenario(sim: Client) -> None:
        with pytest.raises(ScaleSimConflictError, match="not newer") as err:
            await call(sim.tick(10, {"a1": 12}, version=5))
        assert err.value.status == 409

    with ScaleSim(standin.url, namespace="town-1", admin_key=_ADMIN_KEY) as other_writer:
        other_writer.tick(1, {}, version=9)
    run(flavor, standin.url, scenario)
    assert standin.requests("GET", "/scalesim/v1/state") == []  # no ambiguity to resolve


def test_a_409_for_the_clock_after_a_lost_attempt_is_still_a_conflict(
    standin: StandIn, flavor: str
) -> None:
    async def scenario(sim: Client) -> None:
        await call(sim.tick(10, {"a1": 12}))
        standin.faults["/scalesim/v1/distances"] = [Fault.HANG]
        with pytest.raises(ScaleSimConflictError, match="clock"):
            await call(sim.tick(5, {"a1": 12}))

    run(flavor, standin.url, scenario, retry=_IMPATIENT)
    assert len(standin.requests("GET", "/scalesim/v1/state")) == 1  # checked, not applied


def test_an_unreachable_server_raises_after_every_attempt_and_marks_nothing_sent(
    flavor: str,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    async def scenario(sim: Client) -> None:
        with pytest.raises(ScaleSimConnectionError) as err:
            await call(sim.tick(10, {"a1": 12}))
        assert err.value.attempts == _FAST.attempts
        assert not sim.versions.was_sent("town-1", 1)

    run(flavor, url, scenario, first_version=1)


def test_a_drop_whose_reply_was_lost_counts_as_dropped(standin: StandIn, flavor: str) -> None:
    async def scenario(sim: Client) -> None:
        await call(sim.tick(1, {"a1": 2}))
        standin.faults["/scalesim/v1/namespaces/town-1"] = [Fault.REPLY_LOST]
        dropped = await call(sim.drop_namespace())
        assert (dropped.agents, dropped.delivery) == (None, Delivery.ALREADY_APPLIED)

    run(flavor, standin.url, scenario, retry=_IMPATIENT)
    assert standin.runtime.namespaces() == []


def test_ticks_of_one_namespace_from_many_threads_arrive_in_version_order(
    standin: StandIn,
) -> None:
    with ScaleSim(standin.url, namespace="town-1", admin_key=_ADMIN_KEY, retry=_FAST) as sim:
        threads = [
            threading.Thread(target=lambda: [sim.tick(1, {"a1": 2}) for _ in range(5)])
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    versions = [post.body["version"] for post in standin.requests("POST", "/scalesim/v1/distances")]
    assert len(versions) == 30 and versions == sorted(set(versions))
    assert standin.runtime.counters.rejected_updates == 0


def test_concurrent_async_ticks_of_one_namespace_are_all_applied(standin: StandIn) -> None:
    async def scenario(sim: Client) -> None:
        assert isinstance(sim, AsyncScaleSim)
        replies = await asyncio.gather(*(sim.tick(1, {"a1": 2}) for _ in range(20)))
        assert {reply.delivery for reply in replies} == {Delivery.APPLIED}

    run("async", standin.url, scenario)
    assert standin.runtime.counters.rejected_updates == 0


def test_the_plan_backs_off_exponentially_and_resends_the_same_call() -> None:
    policy = RetryPolicy(attempts=4, backoff_s=0.5, max_backoff_s=1.5)
    update = distance_update(namespace="ns", clock=1.0, version=9, next_call={"a": 2.0})
    plan = tick_plan(update, versions=VersionBook(), policy=policy)
    request = httpx.Request("POST", "http://x/scalesim/v1/distances")
    steps: list[HttpCall | Backoff] = [next(plan)]
    for _ in range(3):
        steps.append(plan.send(httpx.Response(502, json={"error": "bad gateway"}, request=request)))
        steps.append(plan.send(None))
    ok = {"namespace": "ns", "applied": 1, "version": 9, "clock": 1.0}
    with pytest.raises(StopIteration) as done:
        plan.send(httpx.Response(200, json=ok, request=request))
    assert [step.seconds for step in steps if isinstance(step, Backoff)] == [0.5, 1.0, 1.5]
    calls = [step for step in steps if isinstance(step, HttpCall)]
    assert len(calls) == 4 and len(set(map(repr, calls))) == 1
    assert done.value.value == TickReply("ns", 1, 9, 1.0, Delivery.APPLIED)


# ---- records --------------------------------------------------------------------------------
def test_malformed_replies_raise_a_protocol_error() -> None:
    with pytest.raises(ScaleSimProtocolError, match="applied"):
        tick_reply({"namespace": "ns", "applied": "3", "version": 1, "clock": 1})
    with pytest.raises(ScaleSimProtocolError, match="JSON object"):
        state_snapshot([])
    counts = {"namespaces": [], "agents": 0, "path_owners": 0, "owned_nodes": 0, "counters": {}}
    with pytest.raises(ScaleSimProtocolError, match="tokens"):
        state_snapshot(counts)
    with pytest.raises(ScaleSimProtocolError, match="tier"):
        state_snapshot({**counts, "tokens": {"device": {"near": 0, "far": 0, "unknown": 0}}})


# ---- estimators as next_call producers ------------------------------------------------------
_ESTIMATES: list[tuple[Any, Any]] = [
    (IndependentAgents(), [ActionState("a", 12.0), ActionState("b", 3.0)]),
    (
        InteractingAgents(interaction_range=1.0, max_velocity=1.0),
        [SpatialAgent("a", 0.0, 0.0, 20.0), SpatialAgent("b", 5.0, 0.0, 20.0)],
    ),
    (
        ActivationPaths(hop_delay=2.0),
        ActivationState(followers={"a": ["b"], "b": ["c"]}, frontier=["a"]),
    ),
    (
        OutOfOrderAgents(MetropolisRules(radius_p=1.0, max_velocity=1.0), step_duration=1.0),
        [StepAgent("a", 3, 0.0, 0.0, 11.0), StepAgent("b", 5, 1.0, 0.0, 12.0)],
    ),
]


@pytest.mark.parametrize(("estimator", "world"), _ESTIMATES, ids=lambda value: type(value).__name__)
def test_next_calls_are_clock_plus_distance_and_pass_the_servers_rules(
    estimator: Any, world: Any
) -> None:
    clock = 10.0
    produced = next_calls(estimator, world, clock)
    distances = estimator.estimate(world, clock)
    assert produced == {agent: clock + distance for agent, distance in distances.items()}
    assert produced  # every hand-built world has estimated agents
    distance_update(namespace="ns", clock=clock, version=1, next_call=produced)


def test_infinite_distance_means_no_call_and_negative_is_refused() -> None:
    assert next_calls_from_distances({"a": math.inf, "b": 0.0}, 4.0) == {"a": None, "b": 4.0}
    with pytest.raises(ScaleSimValidationError, match="'a'"):
        next_calls_from_distances({"a": -1.0}, 4.0)
    assert unestimated(["c", "a", "c", "b"], {"a": 1.0}) == ["c", "b"]


def test_importing_the_client_imports_neither_torch_nor_sglang() -> None:
    code = (
        "import sys, scalesim.client; "
        "assert not {'torch', 'sglang'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
