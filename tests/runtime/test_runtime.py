"""The runtime's inputs (metadata, updates, namespaces) and decisions (ranks, prefetch)."""

from __future__ import annotations

import pytest
from runtime_tree import Tree

from scalesim.config import ConfigError
from scalesim.distance import KNOWN, NO_CALL, NOBODY, UNKNOWN
from scalesim.memory.resource import Resource, Tier
from scalesim.runtime import (
    AgentMeta,
    ContractError,
    DistanceUpdate,
    RuntimeConfig,
    ScaleSimRuntime,
    owner_key,
)


def _update(clock: float, next_call: dict[str, float | None], **kwargs: object) -> DistanceUpdate:
    values: dict[str, object] = {"namespace": "town", "version": None, "unknown": ()}
    values.update(kwargs)
    return DistanceUpdate(clock=clock, next_call=next_call, **values)  # type: ignore[arg-type]


def test_request_next_call_makes_its_agent_near() -> None:
    runtime = ScaleSimRuntime()
    owner = runtime.observe(AgentMeta("a0", "town", clock=3.0, next_call=7.0))
    assert owner == owner_key("town", "a0")
    key = runtime.rank_key([owner], 0.0)
    assert (key.known, key.remaining(0.0)) == (KNOWN, 4.0)


def test_request_next_call_null_means_no_call_expected() -> None:
    """Regression: ``"next_call": null`` in request metadata was read as "not given", so the
    agent kept its old (near) prediction."""
    runtime = ScaleSimRuntime()
    owner = runtime.observe(AgentMeta("a0", "town", clock=3.0, next_call=7.0))
    runtime.observe(AgentMeta("a0", "town", clock=4.0))  # says nothing: prediction kept
    assert runtime.rank_key([owner], 0.0).known == KNOWN
    runtime.observe(AgentMeta("a0", "town", clock=5.0, no_call=True))
    assert runtime.rank_key([owner], 0.0).known == NO_CALL  # below agents merely unknown


def test_state_no_call_reuses_goes_before_state_of_agents_expecting_no_call() -> None:
    """No owner: no call is expected to repeat it (a reply, an observation). A "no call" owner
    may still come back (a workflow role when the next instance arrives), so the unowned
    tail goes first, however recently it was used."""
    runtime = ScaleSimRuntime()
    runtime.predict("flow", {"idle": None})
    idle = runtime.rank_key([owner_key("flow", "idle")], 1.0)
    tail = runtime.rank_key([], 9.0)
    assert (tail.known, idle.known) == (NOBODY, NO_CALL)
    assert tail < idle


def test_update_ranks_by_distance_from_the_namespace_clock() -> None:
    runtime = ScaleSimRuntime()
    result = runtime.apply(_update(10.0, {"a": 12.0, "b": 30.0, "c": None}, version=1))
    assert (result.applied, result.version, result.clock) == (3, 1, 10.0)
    ranks = {agent: runtime.rank_key([owner_key("town", agent)], 0.0) for agent in "abcd"}
    assert ranks["a"] > ranks["b"] > ranks["d"] > ranks["c"]  # c: no call expected
    assert (ranks["c"].known, ranks["d"].known) == (NO_CALL, UNKNOWN)


def test_stale_version_and_backward_clock_are_409_and_change_nothing() -> None:
    runtime = ScaleSimRuntime()
    runtime.apply(_update(10.0, {"a": 12.0}, version=5))
    before = runtime.rank_key([owner_key("town", "a")], 0.0)
    for bad in (_update(11.0, {"a": 40.0}, version=5), _update(9.0, {"a": 40.0}, version=6)):
        with pytest.raises(ContractError) as err:
            runtime.apply(bad)
        assert err.value.status == 409
    assert runtime.rank_key([owner_key("town", "a")], 0.0) == before
    assert runtime.counters.rejected_updates == 2
    assert [(ns.clock, ns.version) for ns in runtime.namespaces()] == [(10.0, 5)]


def test_unknown_withdraws_a_prediction() -> None:
    runtime = ScaleSimRuntime()
    runtime.apply(_update(0.0, {"a": 2.0}))
    runtime.apply(_update(1.0, {}, unknown=("a",)))
    assert runtime.rank_key([owner_key("town", "a")], 0.0).known == UNKNOWN


def test_namespaces_are_isolated_and_ranked_by_their_own_clocks() -> None:
    runtime = ScaleSimRuntime()
    runtime.apply(_update(100.0, {"a": 103.0}))  # 3 from now in town
    runtime.apply(_update(0.0, {"a": 5.0}, namespace="net"))  # 5 from now in net
    town, net = owner_key("town", "a"), owner_key("net", "a")
    assert runtime.rank_key([town], 0.0) > runtime.rank_key([net], 0.0)
    dropped = runtime.drop_namespace("net")
    assert dropped is not None and dropped.agents == 1
    assert runtime.rank_key([net], 0.0).known == UNKNOWN
    assert runtime.rank_key([town], 0.0).known == KNOWN
    assert runtime.drop_namespace("net") is None


def test_node_rank_follows_the_nearest_owner() -> None:
    runtime = ScaleSimRuntime()
    tree = Tree(runtime)
    a_end, b_end = tree.insert((1, 2, 3)), tree.insert((1, 2, 9))
    runtime.owners.record_path(a_end, owner_key("town", "a"))
    runtime.owners.record_path(b_end, owner_key("town", "b"))
    runtime.apply(_update(0.0, {"a": 9.0, "b": 1.0}))
    shared = a_end.parent
    assert shared is not None
    keys = {name: runtime.node_rank(node, 0.0) for name, node in (("a", a_end), ("b", b_end))}
    assert keys["a"] < keys["b"]
    assert runtime.node_rank(shared, 0.0).owner_rank == keys["b"].owner_rank


def test_due_owners_are_within_the_window_nearest_first() -> None:
    runtime = ScaleSimRuntime(RuntimeConfig(prefetch_window=2.0))
    runtime.apply(_update(10.0, {"far": 20.0, "soon": 12.0, "now": 10.0, "gone": None}))
    assert runtime.due_owners() == [owner_key("town", "now"), owner_key("town", "soon")]
    runtime.apply(_update(10.0, {"now": 30.0}))  # a newer prediction replaces the old one
    assert runtime.due_owners() == [owner_key("town", "soon")]


def test_prefetch_never_evicts_a_nearer_owner() -> None:
    runtime = ScaleSimRuntime(RuntimeConfig(prefetch_window=5.0))
    runtime.apply(_update(0.0, {"fetched": 3.0, "mid": 2.0, "far": 50.0}))
    fetched, mid, far = (owner_key("town", agent) for agent in ("fetched", "mid", "far"))
    resources = [
        Resource(fetched, (fetched,), 10, Tier.HOST, 0.0),
        Resource("node:1", (mid,), 10, Tier.DEVICE, 0.0),
        Resource("node:2", (far,), 6, Tier.DEVICE, 0.0),
    ]
    plan = runtime.plan_prefetch(resources, free_bytes=0, budget_bytes=100)
    assert plan.fetch == ()  # far frees 6 of 10 tokens; mid calls sooner than `fetched`
    plan = runtime.plan_prefetch(resources, free_bytes=4, budget_bytes=100)
    assert (plan.fetch, plan.evict) == ((fetched,), ("node:2",))


def test_unknown_config_key_is_named() -> None:
    with pytest.raises(ConfigError, match="prefetch_windw"):
        RuntimeConfig.from_mapping({"prefetch_windw": 3})
    with pytest.raises(ConfigError, match="overdue_grace"):
        RuntimeConfig.from_mapping({"overdue_grace": -1})
