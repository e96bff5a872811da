"""Planner invariants under hypothesis: safety, budgets, Belady, LRU, determinism."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st
from memory_strategies import AGENTS, Scenario, scenarios

from scalesim.distance import DistanceTable
from scalesim.memory import MemoryPlanner, Resource, Tier


def oracle_rank(item: Resource, scenario: Scenario) -> tuple[int, float, float, str]:
    """The expected order, from the scenario alone (distances were set at time 0, so a
    distance is the owner's predicted call time): any owner with a distance beats none, the
    nearest such owner decides (sooner: keep longer), then least recent use, then the key."""
    etas = [scenario.distances.get(owner) for owner in item.owners]
    known = [eta for eta in etas if eta is not None]
    if not known:
        return (0, 0.0, item.last_use, item.key)
    return (1, -min(known), item.last_use, item.key)


def make_planner(scenario: Scenario) -> MemoryPlanner:
    table = DistanceTable()
    table.update_batch(scenario.distances, now=0.0)
    return MemoryPlanner(table)


@given(scenarios(), st.sampled_from([Tier.DEVICE, Tier.HOST]), st.integers(0, 200))
def test_eviction_is_safe_minimal_and_farthest_first(
    scenario: Scenario, tier: Tier, n_bytes: int
) -> None:
    tool = make_planner(scenario)
    plan = tool.eviction_order(scenario.resources, tier=tier, n_bytes=n_bytes, now=scenario.now)
    by_key = {item.key: item for item in scenario.resources}
    chosen = [by_key[key] for key in plan.keys]
    assert all(item.tier is tier and item.evictable for item in chosen)
    assert plan.freed_bytes == sum(item.size_bytes for item in chosen)
    if chosen:
        assert plan.freed_bytes - chosen[-1].size_bytes < n_bytes  # no extra victim
    ranks = [oracle_rank(item, scenario) for item in chosen]
    assert ranks == sorted(ranks)
    rest = [item for item in scenario.resources if item.key not in plan.keys]
    eligible = [item for item in rest if item.tier is tier and item.evictable]
    if plan.shortfall_bytes:
        assert not eligible
    elif ranks:
        assert all(oracle_rank(item, scenario) > ranks[-1] for item in eligible)


@given(
    scenarios(),
    st.integers(0, 10).map(float),
    st.integers(0, 120),
    st.integers(0, 60),
)
def test_prefetch_respects_budgets_and_never_displaces_a_nearer_resource(
    scenario: Scenario, window: float, budget_bytes: int, free_bytes: int
) -> None:
    tool = make_planner(scenario)
    plan = tool.prefetch_plan(
        scenario.resources,
        now=scenario.now,
        window=window,
        budget_bytes=budget_bytes,
        device_free_bytes=free_bytes,
    )
    by_key = {item.key: item for item in scenario.resources}
    fetched = [by_key[key] for key in plan.fetch]
    evicted = [by_key[key] for key in plan.evict]
    assert all(item.tier is Tier.HOST for item in fetched)
    assert all(item.tier is Tier.DEVICE and item.evictable for item in evicted)
    assert plan.fetch_bytes == sum(item.size_bytes for item in fetched) <= budget_bytes
    assert plan.evict_bytes == sum(item.size_bytes for item in evicted)
    for item in fetched:
        known, neg_eta, _, _ = oracle_rank(item, scenario)
        assert known == 1 and max(0.0, -neg_eta - scenario.now) <= window
    # Replay the plan: each eviction must be needed, and strictly farther than the fetch
    # it makes room for.
    free, victims = free_bytes, iter(evicted)
    for item in fetched:
        while free < item.size_bytes:
            victim = next(victims)
            assert oracle_rank(victim, scenario)[:2] < oracle_rank(item, scenario)[:2]
            free += victim.size_bytes
        free -= item.size_bytes
    assert next(victims, None) is None


@given(st.lists(st.sampled_from(AGENTS[:5]), min_size=1, max_size=30), st.data())
def test_exact_distances_give_beladys_choice(future: list[str], data: st.DataObject) -> None:
    """Unit-size single-owner resources: the victim's next use is the farthest."""
    resources = [Resource(f"r-{agent}", (agent,), 1, Tier.DEVICE, 0.0) for agent in AGENTS[:5]]
    now = 100.0
    next_use = {agent: None for agent in AGENTS[:5]}
    for offset, agent in reversed(list(enumerate(future))):
        next_use[agent] = now + offset
    table = DistanceTable()
    for agent, use in sorted(next_use.items(), key=lambda item: data.draw(st.integers())):
        table.update(agent, None if use is None else use - now, now=now)
    victim = (
        MemoryPlanner(table).eviction_order(resources, tier=Tier.DEVICE, n_bytes=1, now=now).keys[0]
    )
    horizon = {agent: float("inf") if use is None else use for agent, use in next_use.items()}
    best = max(horizon.values())
    assert horizon[victim.removeprefix("r-")] == best


@given(scenarios(), st.integers(0, 300))
def test_without_distances_eviction_is_lru(scenario: Scenario, n_bytes: int) -> None:
    tool = MemoryPlanner(DistanceTable())
    plan = tool.eviction_order(
        scenario.resources, tier=Tier.DEVICE, n_bytes=n_bytes, now=scenario.now
    )
    lru = sorted(
        (item for item in scenario.resources if item.tier is Tier.DEVICE and item.evictable),
        key=lambda item: (item.last_use, item.key),
    )
    assert list(plan.keys) == [item.key for item in lru][: len(plan.keys)]


@given(scenarios(), st.randoms(use_true_random=False))
def test_same_inputs_give_same_plans_in_any_order(scenario: Scenario, rng: random.Random) -> None:
    shuffled_resources = list(scenario.resources)
    rng.shuffle(shuffled_resources)
    shuffled_distances = list(scenario.distances.items())
    rng.shuffle(shuffled_distances)
    first = make_planner(scenario)
    second = make_planner(scenario._replace(distances=dict(shuffled_distances)))
    for tier in (Tier.DEVICE, Tier.HOST):
        assert first.eviction_order(
            scenario.resources, tier=tier, n_bytes=60, now=scenario.now
        ) == second.eviction_order(shuffled_resources, tier=tier, n_bytes=60, now=scenario.now)
    limits = {"now": scenario.now, "window": 8.0, "budget_bytes": 80, "device_free_bytes": 20}
    assert first.prefetch_plan(scenario.resources, **limits) == second.prefetch_plan(
        shuffled_resources, **limits
    )
