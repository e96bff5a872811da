"""ResourceIndex: incremental re-ranking, staleness, and agreement with MemoryPlanner."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from memory_strategies import AGENTS, Scenario, scenarios

from scalesim.distance import DistanceTable, InvalidEntryError
from scalesim.memory import MemoryPlanner, Resource, ResourceIndex, Tier

D, H = Tier.DEVICE, Tier.HOST


def drain(index: ResourceIndex, tier: Tier, *, now: float) -> list[str]:
    keys = []
    while (victim := index.pop_victim(tier, now=now)) is not None:
        keys.append(victim.key)
    return keys


def test_distance_update_reranks_the_agents_resources() -> None:
    table = DistanceTable()
    index = ResourceIndex(table)
    for key, owner in [("ra", "a"), ("rb", "b"), ("rc", "c")]:
        index.add(Resource(key, (owner,), 1, D, 0.0), now=0.0)
    table.update_batch({"a": 1.0, "b": 5.0, "c": 9.0}, now=0.0)
    assert index.eviction_order(tier=D, n_bytes=3, now=0.0).keys == ("rc", "rb", "ra")
    table.update("c", 0.5, now=0.25)  # next call at 0.75: c now calls first
    assert drain(index, D, now=1.0) == ["rb", "ra", "rc"]


def test_shared_resource_falls_back_to_its_next_nearest_owner() -> None:
    table = DistanceTable()
    table.update_batch({"a": 1.0, "b": 6.0, "c": 8.0}, now=0.0)
    index = ResourceIndex(table)
    index.add(Resource("prefix", ("a", "b"), 1, D, 0.0), now=0.0)
    index.add(Resource("own-c", ("c",), 1, D, 0.0), now=0.0)
    assert index.rank("prefix").neg_eta == -1.0
    table.update("a", None, now=0.0)  # a will not call again: b is now the nearest
    assert index.rank("prefix").neg_eta == -6.0
    table.update("b", 20.0, now=0.0)
    assert index.eviction_order(tier=D, n_bytes=1, now=0.0).keys == ("prefix",)


def test_stale_distances_fall_back_to_lru_when_time_advances() -> None:
    table = DistanceTable(horizon=10.0)
    index = ResourceIndex(table)
    index.add(Resource("old", ("a",), 1, D, 1.0), now=0.0)
    index.add(Resource("new", ("b",), 1, D, 2.0), now=0.0)
    table.update_batch({"a": 1.0, "b": 50.0}, now=0.0)
    assert index.eviction_order(tier=D, n_bytes=1, now=5.0).keys == ("new",)
    assert index.eviction_order(tier=D, n_bytes=1, now=11.0).keys == ("old",)


def test_plans_do_not_consume_the_index() -> None:
    index = ResourceIndex(DistanceTable())
    index.add(Resource("r", ("a",), 4, D, 0.0), now=0.0)
    for _ in range(2):
        assert index.eviction_order(tier=D, n_bytes=9, now=0.0).keys == ("r",)
    assert len(index) == 1


def test_locked_resources_stay_until_updated_unlocked() -> None:
    index = ResourceIndex(DistanceTable())
    index.add(Resource("r", ("a",), 4, D, 0.0, locked=True), now=0.0)
    assert index.pop_victim(D, now=0.0) is None
    index.update(Resource("r", ("a",), 4, D, 0.0), now=0.0)
    victim = index.pop_victim(D, now=0.0)
    assert victim is not None and victim.key == "r"
    assert "r" not in index


def test_index_rejects_duplicates_and_the_none_tier() -> None:
    index = ResourceIndex(DistanceTable())
    index.add(Resource("r", ("a",), 4, D, 0.0), now=0.0)
    with pytest.raises(InvalidEntryError, match="already indexed"):
        index.add(Resource("r", ("b",), 4, H, 0.0), now=0.0)
    with pytest.raises(InvalidEntryError, match=r"Tier\.NONE"):
        index.pop_victim(Tier.NONE, now=0.0)


@given(
    scenarios(),
    st.lists(
        st.tuples(st.sampled_from(AGENTS), st.one_of(st.none(), st.integers(0, 20).map(float)))
    ),
    st.randoms(use_true_random=False),
)
def test_index_agrees_with_planner_after_incremental_changes(
    scenario: Scenario,
    later: list[tuple[str, float | None]],
    rng: random.Random,
) -> None:
    table = DistanceTable()
    table.update_batch(scenario.distances, now=0.0)
    index = ResourceIndex(table)
    order = list(scenario.resources)
    rng.shuffle(order)
    for item in order:
        index.add(item, now=scenario.now)
    for step, (agent, distance) in enumerate(later):
        table.update(agent, distance, now=scenario.now + step)
    now = scenario.now + len(later)
    planner = MemoryPlanner(table)
    for tier in (D, H):
        expected = planner.eviction_order(scenario.resources, tier=tier, n_bytes=70, now=now)
        assert index.eviction_order(tier=tier, n_bytes=70, now=now) == expected
    limits = {"now": now, "window": 6.0, "budget_bytes": 90, "device_free_bytes": 15}
    assert index.prefetch_plan(**limits) == planner.prefetch_plan(scenario.resources, **limits)
    full = planner.eviction_order(scenario.resources, tier=D, n_bytes=10**9, now=now)
    assert drain(index, D, now=now) == list(full.keys)


def test_shared_resource_follows_its_nearest_owner_moving_away() -> None:
    """Regression: an outdated owner-heap entry must not keep a group's old rank."""
    table = DistanceTable()
    table.update_batch({"a": 1.0, "b": 6.0, "c": 8.0}, now=0.0)
    index = ResourceIndex(table)
    index.add(Resource("prefix", ("a", "b"), 1, D, 0.0), now=0.0)
    index.add(Resource("own-c", ("c",), 1, D, 0.0), now=0.0)
    table.update("a", 20.0, now=0.0)  # b (6) is now the nearest owner
    assert index.rank("prefix").neg_eta == -6.0
    assert index.eviction_order(tier=D, n_bytes=2, now=0.0).keys == ("own-c", "prefix")


def test_equal_ranks_interleave_groups_by_recency_then_key() -> None:
    """Groups tied on rank (here: all unknown) must not be evicted group by group."""
    index = ResourceIndex(DistanceTable())
    for key, owner, last_use in [("a1", "a", 1.0), ("a3", "a", 3.0), ("b2", "b", 2.0)]:
        index.add(Resource(key, (owner,), 1, D, last_use), now=0.0)
    index.add(Resource("b1", ("b",), 1, D, 1.0), now=0.0)
    assert index.eviction_order(tier=D, n_bytes=4, now=0.0).keys == ("a1", "b1", "b2", "a3")
    fetchable = [Resource(f"h{n}", (owner,), 1, H, 5.0) for n, owner in enumerate("ba")]
    for item in fetchable:
        index.add(item, now=0.0)
    plan = index.prefetch_plan(now=0.0, window=1.0, budget_bytes=9, device_free_bytes=9)
    assert plan.fetch == ()  # unknown owners are never prefetched


def test_locked_head_is_skipped_and_the_rest_of_its_group_still_evicts() -> None:
    """Regression: a locked least-recent member must not hide its group's others."""
    table = DistanceTable()
    table.update_batch({"a": 90.0, "b": 1.0}, now=0.0)
    index = ResourceIndex(table)
    index.add(Resource("a-old", ("a",), 1, D, 0.0, locked=True), now=0.0)
    index.add(Resource("a-new", ("a",), 1, D, 5.0), now=0.0)
    index.add(Resource("b-any", ("b",), 1, D, 0.0), now=0.0)
    assert drain(index, D, now=0.0) == ["a-new", "b-any"]
    assert "a-old" in index
    index.update(Resource("a-old", ("a",), 1, D, 0.0), now=0.0)
    assert drain(index, D, now=0.0) == ["a-old"]
