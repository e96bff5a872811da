"""ResourceIndex against MemoryPlanner under long random operation sequences.

The index keeps owner groups, lazy heaps and tree walks; the planner sorts a
snapshot. After every operation both must give exactly the same ranks and plans.
"""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st
from memory_strategies import AGENTS, resources

from scalesim.distance import DistanceTable
from scalesim.memory import MemoryPlanner, Resource, ResourceIndex, Tier

D, H = Tier.DEVICE, Tier.HOST

distances = st.one_of(st.none(), st.integers(0, 20).map(float))
hints = st.tuples(st.just("hint"), st.sampled_from(AGENTS), distances)
operations = st.one_of(
    hints,
    hints,  # distance changes are the index's hot path: draw them more often
    st.tuples(st.just("move"), st.integers(0, 99), st.sampled_from(list(Tier))),
    st.tuples(st.just("touch"), st.integers(0, 99), st.integers(0, 10).map(float)),
    st.tuples(st.just("lock"), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("owners"), st.integers(0, 99), st.lists(st.sampled_from(AGENTS), max_size=3)),
    st.tuples(st.just("pop"), st.sampled_from([D, H]), st.none()),
    st.tuples(st.just("tick"), st.none(), st.none()),
)


def apply(index: ResourceIndex, table: DistanceTable, op: tuple[object, ...], now: float) -> None:
    kind, first, second = op
    keys = sorted(key for key in (f"r{number:02d}" for number in range(20)) if key in index)
    if kind == "hint":
        assert isinstance(first, str)
        table.update(first, second, now=now)  # type: ignore[arg-type]
    elif kind == "pop":
        assert isinstance(first, Tier)
        index.pop_victim(first, now=now)
    elif kind != "tick" and keys:
        assert isinstance(first, int)
        old = index.get(keys[first % len(keys)])
        assert old is not None
        field = {"move": "tier", "touch": "last_use", "lock": "locked", "owners": "owners"}[kind]
        index.update(dataclasses.replace(old, **{field: second}), now=now)


def assert_agrees(index: ResourceIndex, planner: MemoryPlanner, now: float) -> None:
    snapshot = [item for key in sorted(f"r{n:02d}" for n in range(20)) if (item := index.get(key))]
    for item in snapshot:
        assert index.rank(item.key) == planner.rank(item, now=now)
    for tier in (D, H):
        for n_bytes in (0, 30, 10**9):
            expected = planner.eviction_order(snapshot, tier=tier, n_bytes=n_bytes, now=now)
            assert index.eviction_order(tier=tier, n_bytes=n_bytes, now=now) == expected
    for window, free in ((6.0, 15), (50.0, 0)):
        limits = {"now": now, "window": window, "budget_bytes": 90, "device_free_bytes": free}
        assert index.prefetch_plan(**limits) == planner.prefetch_plan(snapshot, **limits)


@settings(max_examples=150, deadline=None)
@given(resources(max_size=20), st.lists(operations, max_size=40), st.sampled_from([None, 4.0]))
def test_index_matches_planner_after_every_operation(
    initial: list[Resource], ops: list[tuple[object, ...]], horizon: float | None
) -> None:
    """Guards the grouped index: stale distances (horizon), owner changes, locks, pops."""
    table = DistanceTable(horizon=horizon)
    index = ResourceIndex(table)
    planner = MemoryPlanner(table)
    for item in initial:
        index.add(item, now=0.0)
    for step, op in enumerate(ops):
        now = step / 2
        apply(index, table, op, now)
        assert_agrees(index, planner, now)
