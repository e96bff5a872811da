"""The client's control fan-out over a router's workers (``scalesim.client.cluster``).

Pure functions on real ``httpx`` responses: how a router's worker list is read, how the
workers' answers to one control call become one answer, and how their state snapshots merge.
The same code against a real router and real workers is ``tests/e2e/test_cluster.py``.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from scalesim.client.cluster import (
    ClusterView,
    combine,
    merge_states,
    routing_key,
    worker_urls,
)
from scalesim.client.records import state_snapshot

_REQUEST = httpx.Request("GET", "http://router/scalesim/v1/state")


def _reply(status: int, body: Any = None) -> httpx.Response:
    return httpx.Response(status, json=body if body is not None else {}, request=_REQUEST)


def _state(*, version: int | None, clock: float, owners: int, near: int) -> dict[str, Any]:
    return {
        "namespaces": [{"name": "town", "clock": clock, "version": version, "agents": 3}],
        "agents": 3,
        "path_owners": owners,
        "owned_nodes": owners * 2,
        "tokens": {
            "device": {"near": near, "far": 1, "unknown": 0},
            "host": {"near": 0, "far": 0, "unknown": 0},
        },
        "counters": {"distance_updates": 2, "evicted_device_tokens": 5},
    }


def test_routing_key_is_unambiguous() -> None:
    assert routing_key("town-1", "a17") == "town-1|a17"
    assert routing_key("a/b", "c") != routing_key("a", "b/c")


def test_worker_list_prefers_healthy_workers() -> None:
    listed = {"workers": [{"url": "http://w1", "is_healthy": False}, {"url": "http://w2",
              "is_healthy": True}], "total": 2}  # fmt: skip
    assert worker_urls(_reply(200, listed)) == ("http://w2",)
    unchecked = {"workers": [{"url": "http://w1"}, {"url": "http://w2"}]}
    assert worker_urls(_reply(200, unchecked)) == ("http://w1", "http://w2")


@pytest.mark.parametrize("reply", [_reply(404), _reply(200, {"status": "ok"}), _reply(500)])
def test_a_plain_server_is_not_a_router(reply: httpx.Response) -> None:
    assert worker_urls(reply) is None


def test_a_404_settles_plain_server_for_good_but_a_5xx_does_not() -> None:
    view = ClusterView()
    assert view.targets(_reply(500)) is None and view.is_router is None
    assert view.targets(_reply(404)) is None and view.is_router is False
    router = ClusterView()
    assert router.targets(_reply(200, {"workers": [{"url": "http://w1"}]})) == ("http://w1",)
    assert router.is_router is True


def test_an_update_succeeds_when_every_answering_worker_applied_it() -> None:
    ok = _reply(200, {"applied": 2})
    lost = httpx.ConnectError("refused")
    assert combine("POST", [ok, lost, _reply(200, {"applied": 2})]) is ok
    conflict = _reply(409, {"error": "version"})
    assert combine("POST", [ok, conflict]) is conflict  # the plan then checks the state
    assert combine("POST", [lost, lost]) is lost  # nobody answered: retried by the plan


def test_a_worker_that_may_have_applied_an_update_makes_the_plan_retry_it() -> None:
    """Regression: a tick that timed out on one live worker was reported as applied, and that
    worker missed the update for good (seen in the 2-worker live bench)."""
    timeout = httpx.ReadTimeout("no reply in time")
    assert combine("POST", [_reply(200, {"applied": 2}), timeout]) is timeout
    assert combine("GET", [_reply(200, _state(version=1, clock=1.0, owners=1, near=0)),
                           timeout]) is timeout  # fmt: skip


def test_state_merges_sums_and_keeps_the_lowest_version() -> None:
    merged = combine(
        "GET",
        [
            _reply(200, _state(version=7, clock=5.0, owners=2, near=10)),
            httpx.ConnectError("dead worker"),
            _reply(200, _state(version=6, clock=4.0, owners=1, near=3)),
        ],
    )
    assert isinstance(merged, httpx.Response) and merged.status_code == 200
    snapshot = state_snapshot(merged.json())
    assert (snapshot.path_owners, snapshot.owned_nodes, snapshot.agents) == (3, 6, 3)
    assert snapshot.device_tokens.near == 13 and snapshot.counters["distance_updates"] == 4
    (info,) = snapshot.namespaces
    assert (info.version, info.clock) == (6, 4.0)  # applied on every worker


def test_a_namespace_unknown_to_one_worker_has_no_common_version() -> None:
    other = _state(version=None, clock=0.0, owners=0, near=0)
    other["namespaces"] = []
    merged = merge_states([_state(version=7, clock=5.0, owners=2, near=1), other])
    assert merged["namespaces"][0]["version"] is None and merged["workers"] == 2


def test_reads_ignore_a_404_from_one_worker_but_not_other_errors() -> None:
    good = _reply(200, _state(version=1, clock=1.0, owners=1, near=0))
    merged = combine("GET", [good, _reply(404, {"error": "unknown namespace"})])
    assert isinstance(merged, httpx.Response) and merged.status_code == 200
    assert combine("GET", [_reply(404), _reply(404)]).status_code == 404  # type: ignore[union-attr]
    denied = _reply(401)
    assert combine("GET", [good, denied]) is denied


def test_drops_add_up_path_owners() -> None:
    bodies = [{"namespace": "town", "agents": 3, "path_owners": 2}, {"namespace": "town",
              "agents": 3, "path_owners": 1}]  # fmt: skip
    merged = combine("DELETE", [_reply(200, body) for body in bodies])
    assert isinstance(merged, httpx.Response)
    assert merged.json() == {"namespace": "town", "agents": 3, "path_owners": 3}


def test_an_unreachable_worker_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    view = ClusterView()
    dead = httpx.ConnectError("refused")
    with caplog.at_level(logging.WARNING, logger="scalesim.client"):
        for _ in range(3):
            view.combine("POST", ["http://w1", "http://w2"], [_reply(200), dead])
    warnings = [r for r in caplog.records if "http://w2" in r.getMessage()]
    assert len(warnings) == 1
