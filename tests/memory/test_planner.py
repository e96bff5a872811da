"""MemoryPlanner on small hand-built cases: exact eviction orders and prefetch plans."""

from __future__ import annotations

import pytest

from scalesim.distance import DistanceTable, InvalidEntryError
from scalesim.memory import EvictionPlan, MemoryPlanner, PrefetchPlan, Resource, Tier

D, H = Tier.DEVICE, Tier.HOST


def res(key: str, owners: tuple[str, ...], size: int, tier: Tier, last_use: float) -> Resource:
    return Resource(key, owners, size, tier, last_use)


def planner(distances: dict[str, float | None]) -> MemoryPlanner:
    table = DistanceTable()
    table.update_batch(distances, now=0.0)
    return MemoryPlanner(table)


def test_eviction_order_is_farthest_first_unknown_before_known() -> None:
    resources = [
        res("near", ("a",), 10, D, 1.0),
        res("far", ("b",), 10, D, 1.0),
        res("idle-old", ("z",), 10, D, 1.0),  # z: no call expected
        res("ghost-new", ("ghost",), 10, D, 3.0),
        res("shared", ("b", "a"), 10, D, 0.0),  # ranks by a, its nearest owner
        res("other-tier", ("ghost",), 10, H, 0.0),
    ]
    plan = planner({"a": 1.0, "b": 9.0, "z": None}).eviction_order(
        resources, tier=D, n_bytes=45, now=0.0
    )
    assert plan == EvictionPlan(("idle-old", "ghost-new", "far", "shared", "near"), 50, 45)
    assert plan.shortfall_bytes == 0


def test_equal_distances_break_ties_by_recency_then_key() -> None:
    resources = [
        res("r2", ("a",), 1, D, 5.0),
        res("r1", ("b",), 1, D, 5.0),
        res("r0", ("c",), 1, D, 6.0),
    ]
    plan = planner({"a": 4.0, "b": 4.0, "c": 4.0}).eviction_order(
        resources, tier=D, n_bytes=3, now=0.0
    )
    assert plan.keys == ("r1", "r2", "r0")


def test_locked_and_pinned_are_never_evicted() -> None:
    resources = [
        Resource("busy", ("x",), 10, D, 0.0, locked=True),
        Resource("kept", ("x",), 10, D, 0.0, pinned=True),
        res("free", ("a",), 4, D, 9.0),
    ]
    plan = planner({"a": 1.0}).eviction_order(resources, tier=D, n_bytes=20, now=0.0)
    assert plan.keys == ("free",)
    assert plan.shortfall_bytes == 16


def test_prefetch_nearest_first_within_window_and_budget() -> None:
    resources = [
        res("h-a", ("a",), 30, H, 0.0),
        res("h-b", ("b",), 30, H, 0.0),
        res("h-c", ("c",), 30, H, 0.0),
        res("h-late", ("late",), 1, H, 0.0),
    ]
    dist: dict[str, float | None] = {"a": 2.0, "b": 1.0, "c": 3.0, "late": 50.0}
    plan = planner(dist).prefetch_plan(
        resources, now=0.0, window=10.0, budget_bytes=70, device_free_bytes=1000
    )
    assert plan == PrefetchPlan(("h-b", "h-a"), (), 60, 0)  # h-c would exceed the budget


def test_prefetch_evicts_only_strictly_farther_resources() -> None:
    resources = [
        res("h-a", ("a",), 10, H, 0.0),
        res("h-b", ("b",), 10, H, 0.0),
        res("d-idle", ("idle",), 10, D, 0.0),
        res("d-same-as-b", ("b2",), 10, D, 0.0),
    ]
    dist: dict[str, float | None] = {"a": 1.0, "b": 5.0, "b2": 5.0}
    plan = planner(dist).prefetch_plan(
        resources, now=0.0, window=10.0, budget_bytes=100, device_free_bytes=5
    )
    # h-a takes the idle slot; h-b may not displace a resource exactly as near as itself
    assert plan == PrefetchPlan(("h-a",), ("d-idle",), 10, 10)


def test_prefetch_window_is_measured_from_now() -> None:
    resources = [res("h-a", ("a",), 1, H, 0.0)]
    tool = planner({"a": 10.0})
    assert (
        tool.prefetch_plan(
            resources, now=0.0, window=5.0, budget_bytes=9, device_free_bytes=9
        ).fetch
        == ()
    )
    assert tool.prefetch_plan(
        resources, now=6.0, window=5.0, budget_bytes=9, device_free_bytes=9
    ).fetch == ("h-a",)


def test_bad_requests_raise() -> None:
    tool = planner({})
    twice = [res("k", ("a",), 1, D, 0.0), res("k", ("b",), 1, D, 0.0)]
    with pytest.raises(InvalidEntryError, match="'k' appears twice"):
        tool.eviction_order(twice, tier=D, n_bytes=1, now=0.0)
    with pytest.raises(InvalidEntryError, match=r"Tier\.NONE"):
        tool.eviction_order([], tier=Tier.NONE, n_bytes=1, now=0.0)
    with pytest.raises(InvalidEntryError, match="n_bytes"):
        tool.eviction_order([], tier=D, n_bytes=-1, now=0.0)
    with pytest.raises(InvalidEntryError, match="window"):
        tool.prefetch_plan([], now=0.0, window=-1.0, budget_bytes=1, device_free_bytes=1)
    with pytest.raises(InvalidEntryError, match="budget_bytes"):
        tool.prefetch_plan([], now=0.0, window=1.0, budget_bytes=True, device_free_bytes=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"key": ""},
        {"owners": "agent"},
        {"owners": ("ok", "bad\n")},
        {"size_bytes": -1},
        {"size_bytes": 1.5},
        {"tier": "device"},
        {"last_use": float("nan")},
    ],
)
def test_resource_rejects_malformed_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "key": "r",
        "owners": ("a",),
        "size_bytes": 1,
        "tier": D,
        "last_use": 0.0,
    }
    fields.update(kwargs)
    with pytest.raises(InvalidEntryError):
        Resource(**fields)  # type: ignore[arg-type]


def test_resource_owners_are_normalised() -> None:
    assert Resource("r", ("b", "a", "b"), 1, D, 0).owners == ("a", "b")
