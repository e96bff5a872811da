"""The control channel's pieces against real SGLang code: the message types through SGLang's
msgpack codec (and pickle, which the tensor-parallel broadcast uses), reply merging across
data-parallel ranks, the route auth level under SGLang's own auth decision, the scheduler
handlers' refusals, and the plug-in wiring in a main process."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap
from types import SimpleNamespace
from typing import Any

import pytest
from scalesim.patches.control import register_message_types
from sglang.srt.managers import io_struct
from sglang.srt.utils.auth import AuthLevel, decide_request_auth

from scalesim.serve import plan_serve
from scalesim.sglang.control import (
    ROUTES,
    generate_body_error,
    metadata_error,
)
from scalesim.sglang.control_messages import (
    MESSAGE_TYPES,
    ScaleSimAdaptersReqInput,
    ScaleSimControlReqOutput,
    ScaleSimDistancesReqInput,
    ScaleSimDropNamespaceReqInput,
    ScaleSimHostAdapterVictimReqInput,
    ScaleSimStateReqInput,
    error_reply,
    merge_replies,
)
from scalesim.sglang.eviction import ScaleSimStrategy
from scalesim.sglang.state import NOT_SCALESIM, dispatch_pairs

_MESSAGES = [
    ScaleSimDistancesReqInput(
        namespace="town-1",
        clock=312.0,
        version=57,
        next_call={"a17": 340.0, "a18": None, "a19": 313.5},
        unknown=["a20"],
    ),
    ScaleSimDistancesReqInput(namespace="default", clock=0.0, next_call={}, unknown=[]),
    ScaleSimStateReqInput(),
    ScaleSimStateReqInput(namespace="town-1"),
    ScaleSimDropNamespaceReqInput(namespace="town/1"),
    ScaleSimAdaptersReqInput(namespace="town-1", adapters={"a17": "lora-17", "a18": None}),
    ScaleSimHostAdapterVictimReqInput(candidates=["lora-3", "lora-1"]),
    ScaleSimControlReqOutput(
        status=200,
        body={"namespaces": [{"name": "t", "clock": 1.5, "version": None, "agents": 2}], "n": 3},
    ),
    error_reply(409, "version 3 is not newer than 4"),
]


@pytest.fixture(scope="module", autouse=True)
def _registered() -> None:
    register_message_types()


@pytest.mark.parametrize("message", _MESSAGES, ids=lambda message: type(message).__name__)
def test_messages_round_trip_through_sglangs_msgpack_codec(message: Any) -> None:
    decoded = io_struct.msgpack_decode(io_struct.msgpack_encode(message))
    assert type(decoded) is type(message)
    assert decoded == message


@pytest.mark.parametrize("message", _MESSAGES, ids=lambda message: type(message).__name__)
def test_messages_survive_the_tensor_parallel_broadcast_pickle(message: Any) -> None:
    assert pickle.loads(pickle.dumps(message)) == message


def test_every_message_type_is_an_sglang_request_and_registered() -> None:
    assert all(issubclass(kind, io_struct.BaseReq) for kind in MESSAGE_TYPES)
    assert set(MESSAGE_TYPES) <= set(io_struct._all_types)
    assert len({kind.__name__ for kind in MESSAGE_TYPES}) == len(MESSAGE_TYPES)  # msgpack tags


def test_whole_number_times_decode_as_floats() -> None:
    """Regression: an int clock from JSON must not fail the scheduler's typed decode."""
    message = ScaleSimDistancesReqInput(namespace="t", clock=3, next_call={"a": 4}, unknown=[])
    decoded = io_struct.msgpack_decode(io_struct.msgpack_encode(message))
    assert decoded.clock == 3.0 and decoded.next_call == {"a": 4.0}


# ---- replies from several data-parallel ranks -----------------------------------------------
def _state(tokens: int, updates: int) -> ScaleSimControlReqOutput:
    body = {
        "namespaces": [{"name": "t", "clock": 1.0, "version": 2, "agents": 3}],
        "agents": 3,
        "path_owners": 1,
        "owned_nodes": 2,
        "tokens": {"device": {"near": tokens, "far": 0, "unknown": 1}},
        "counters": {"distance_updates": updates},
    }
    return ScaleSimControlReqOutput(status=200, body=body)


def test_one_reply_is_the_answer() -> None:
    assert merge_replies([_state(5, 1)], summed=True) == _state(5, 1)


def test_the_first_failure_wins() -> None:
    refused = error_reply(409, "stale")
    assert merge_replies([_state(5, 1), refused, error_reply(500, "x")]) == refused


def test_no_reply_is_503() -> None:
    assert merge_replies([]).status == 503


def test_state_snapshots_add_up_per_tree_numbers_across_ranks() -> None:
    merged = merge_replies([_state(5, 1), _state(7, 1)], summed=True).body
    assert merged["tokens"] == {"device": {"near": 12, "far": 0, "unknown": 2}}
    assert (merged["owned_nodes"], merged["path_owners"], merged["counters"]) == (
        4,
        2,
        {"distance_updates": 2},
    )
    assert merged["namespaces"] == _state(5, 1).body["namespaces"]
    assert merged["agents"] == 3


# ---- auth: SGLang's own decision on the routes' level -----------------------------------------
def _decide(header: str | None, *, api_key: str | None, admin_key: str | None) -> int:
    levels = {getattr(endpoint, "_auth_level", None) for _, endpoint, _ in ROUTES}
    assert levels == {AuthLevel.ADMIN_OPTIONAL}
    decision = decide_request_auth(
        method="POST",
        path="/scalesim/v1/distances",
        authorization_header=header,
        api_key=api_key,
        admin_api_key=admin_key,
        auth_level=AuthLevel.ADMIN_OPTIONAL,
    )
    return 200 if decision.allowed else decision.error_status_code


@pytest.mark.parametrize(
    ("api_key", "admin_key", "expected"),
    [
        # no key at all: open (local development)
        (None, None, {None: 200, "Bearer x": 200, "Bearer user": 200, "Bearer admin": 200}),
        # only --api-key: SGLang's admin routes take the api key
        ("user", None, {None: 401, "Bearer x": 401, "Bearer user": 200, "Bearer admin": 401}),
        # --admin-api-key: only the admin key opens them
        (None, "admin", {None: 401, "Bearer x": 401, "Bearer user": 401, "Bearer admin": 200}),
        ("user", "admin", {None: 401, "Bearer x": 401, "Bearer user": 401, "Bearer admin": 200}),
    ],
)
def test_control_routes_are_protected_like_sglangs_admin_routes(
    api_key: str | None, admin_key: str | None, expected: dict[str | None, int]
) -> None:
    decided = {header: _decide(header, api_key=api_key, admin_key=admin_key) for header in expected}
    assert decided == expected


# ---- metadata checks in the HTTP process ------------------------------------------------------
def test_metadata_without_scalesim_is_left_to_sglang() -> None:
    assert metadata_error(None) is None
    assert metadata_error({"thinking_budget": 3}) is None
    assert metadata_error(["not", "a", "map"]) is None
    assert metadata_error({"scalesim": {"agent": "a1", "clock": 1, "next_call": 2}}) is None


def test_metadata_errors_name_the_field() -> None:
    error = metadata_error({"scalesim": {"agent": "a1", "namespace": {"nested": 1}}})
    assert error is not None and "custom_params.scalesim.namespace" in error


def test_native_generate_bodies_are_checked_single_and_batched() -> None:
    good = {"max_new_tokens": 2, "custom_params": {"scalesim": {"agent": "a1"}}}
    bad = {"max_new_tokens": 2, "custom_params": {"scalesim": {"agent": "a 1"}}}
    assert generate_body_error({"text": "hi", "sampling_params": good}) is None
    assert generate_body_error({"text": "hi"}) is None
    assert "agent" in (generate_body_error({"text": "hi", "sampling_params": bad}) or "")
    batched = {"text": ["a", "b"], "sampling_params": [good, bad]}
    assert "agent" in (generate_body_error(batched) or "")


# ---- scheduler handlers never raise ---------------------------------------------------------
def _handlers(tree_cache: object) -> dict[type, Any]:
    # The handlers read one attribute of the scheduler: its tree cache.
    return dict(dispatch_pairs(SimpleNamespace(tree_cache=tree_cache)))


@pytest.mark.parametrize("message", _MESSAGES[:7], ids=lambda message: type(message).__name__)
def test_a_scheduler_without_the_scalesim_policy_answers_503(message: Any) -> None:
    reply = _handlers(None)[type(message)](message)
    assert (reply.status, reply.body) == (503, {"error": NOT_SCALESIM})


def test_an_internal_error_is_a_500_reply_not_a_scheduler_crash() -> None:
    """Regression: an exception inside a handler must not escape into the scheduler loop."""
    broken_tree = SimpleNamespace(tree_core=SimpleNamespace(eviction_strategy=ScaleSimStrategy()))
    reply = _handlers(broken_tree)[ScaleSimStateReqInput](ScaleSimStateReqInput())
    assert reply.status == 500 and "ScaleSimStateReqInput" in reply.body["error"]


def test_runtime_refusals_become_replies() -> None:
    tree = SimpleNamespace(tree_core=SimpleNamespace(eviction_strategy=ScaleSimStrategy()))
    handlers = _handlers(tree)
    update = ScaleSimDistancesReqInput(
        namespace="t", clock=5.0, version=2, next_call={}, unknown=[]
    )
    assert handlers[ScaleSimDistancesReqInput](update).body == {
        "namespace": "t",
        "applied": 0,
        "version": 2,
        "clock": 5.0,
    }
    stale = handlers[ScaleSimDistancesReqInput](update)
    assert (stale.status, stale.body) == (409, {"error": "version 2 is not newer than 2"})
    unknown = handlers[ScaleSimDropNamespaceReqInput](ScaleSimDropNamespaceReqInput(namespace="u"))
    assert (unknown.status, unknown.body) == (404, {"error": "unknown namespace 'u'"})
    dropped = handlers[ScaleSimDropNamespaceReqInput](ScaleSimDropNamespaceReqInput(namespace="t"))
    assert (dropped.status, dropped.body) == (
        200,
        {"namespace": "t", "agents": 0, "path_owners": 0},
    )


# ---- plug-in wiring in the main (HTTP) process ------------------------------------------------
def test_main_process_gets_http_hooks_routes_and_message_types() -> None:
    env = dict(plan_serve(["--device", "cpu"], environ={}, cuda_available=False).env)
    script = textwrap.dedent(
        """
        import json
        from scalesim.patches.registration import is_patched, resolve_target
        from scalesim.patches.table import CONTROL_HOOKS, HTTP_HOOKS
        specs = (*CONTROL_HOOKS, *HTTP_HOOKS)
        originals = {spec.target: resolve_target(spec.target) for spec in specs}
        from sglang.srt.plugins import load_plugins
        load_plugins()
        from sglang.srt.entrypoints.http_server import app
        from sglang.srt.managers import io_struct
        from scalesim.sglang.control_messages import MESSAGE_TYPES
        print(json.dumps({
            "patched": {s.target: is_patched(s, originals[s.target]) for s in specs},
            "routes": sorted(
                f"{sorted(r.methods)[0]} {r.path}" for r in app.routes
                if getattr(r, "path", "").startswith("/scalesim")
            ),
            "types": all(kind in io_struct._all_types for kind in MESSAGE_TYPES),
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["patched"] and all(result["patched"].values()), result["patched"]
    assert result["routes"] == [
        "DELETE /scalesim/v1/namespaces/{namespace:path}",
        "GET /scalesim/v1/state",
        "POST /scalesim/v1/adapters",
        "POST /scalesim/v1/distances",
    ]
    assert result["types"] is True
