"""Adapter slots by distance (``scalesim.runtime.adapters``): exact victims, the registry, the
prefetch plan, and the properties that a prefetch never evicts a nearer or in-use adapter."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scalesim.runtime import RuntimeConfig, ScaleSimRuntime, owner_key
from scalesim.runtime.adapters import AdapterSlots, SlotView

NS = "town"


def _slots(next_calls: dict[str, float | None], *, clock: float = 0.0) -> AdapterSlots:
    """Agent ``aN`` uses adapter ``lora-N``; ``next_calls`` by agent at ``clock``."""
    runtime = ScaleSimRuntime(RuntimeConfig.from_mapping({"hint_trust": "full"}))
    runtime.advance(NS, clock)
    runtime.predict(NS, next_calls)
    slots = AdapterSlots(runtime)
    slots.declare(NS, {agent: f"lora-{agent[1:]}" for agent in next_calls})
    return slots


def test_victim_is_the_adapter_whose_nearest_owner_calls_latest() -> None:
    slots = _slots({"a0": 5, "a1": 30, "a2": 10})
    for name in ("lora-1", "lora-0", "lora-2"):
        slots.touch(name)
    order = []
    candidates: set[str | None] = {"lora-0", "lora-1", "lora-2"}
    while candidates:
        victim = slots.victim(candidates)
        order.append(victim)
        candidates.discard(victim)
    assert order == ["lora-1", "lora-2", "lora-0"]


def test_unknown_agents_go_first_by_lru_and_base_only_when_alone() -> None:
    slots = _slots({"a0": 5})
    slots.assign(owner_key(NS, "a1"), "lora-1")  # no distance: unknown
    slots.assign(owner_key(NS, "a2"), "lora-2")
    slots.touch("lora-2")
    slots.touch("lora-1")
    assert slots.victim({None, "lora-0", "lora-1", "lora-2"}) == "lora-2"
    assert slots.victim({None, "lora-0"}) == "lora-0"
    assert slots.victim({None}) is None


def test_shared_adapter_ranks_by_its_nearest_owner() -> None:
    slots = _slots({"a0": 40, "a1": 20})
    slots.declare(NS, {"a9": "lora-0"})  # a9 shares lora-0 and calls soonest
    assert slots.runtime is not None
    slots.runtime.predict(NS, {"a9": 2})
    assert slots.owners_of("lora-0") == {owner_key(NS, "a0"), owner_key(NS, "a9")}
    assert slots.victim({"lora-0", "lora-1"}) == "lora-1"


def test_a_request_moves_its_agent_to_another_adapter() -> None:
    slots = _slots({"a0": 3})
    slots.assign(owner_key(NS, "a0"), "lora-7")
    assert slots.owners_of("lora-0") == frozenset()
    assert slots.adapter_of(owner_key(NS, "a0")) == "lora-7"


def test_without_a_runtime_the_order_is_lru() -> None:
    slots = AdapterSlots()
    for name in ("b", "a", "c"):
        slots.touch(name)
    assert slots.victim({"a", "b", "c"}) == "b"


def test_prefetch_fills_free_slots_then_only_evicts_farther_unprotected() -> None:
    slots = _slots({"a0": 1, "a1": 2, "a2": 50, "a3": 60, "a4": 0.5})
    due = [owner_key(NS, agent) for agent in ("a4", "a0", "a1")]
    view = SlotView(
        resident=frozenset({None, "lora-2", "lora-3"}),
        protected=frozenset({"lora-3"}),
        free_slots=1,
    )
    # lora-4 into the free slot; lora-0 in place of lora-2 (farther); lora-3 is in use.
    assert slots.prefetch_plan(due, view, max_loads=5) == ["lora-4", "lora-0"]
    assert slots.prefetch_plan(due, view, max_loads=1) == ["lora-4"]


def test_prefetch_never_evicts_a_nearer_adapter() -> None:
    slots = _slots({"a0": 1, "a1": 5})
    view = SlotView(resident=frozenset({None, "lora-0"}), protected=frozenset(), free_slots=0)
    assert slots.prefetch_plan([owner_key(NS, "a1")], view, max_loads=2) == []


_AGENTS = [f"a{index}" for index in range(8)]


@settings(max_examples=200, deadline=None)
@given(
    etas=st.lists(st.one_of(st.none(), st.integers(0, 20)), min_size=8, max_size=8),
    resident=st.sets(st.integers(0, 7), max_size=4),
    protected=st.sets(st.integers(0, 7), max_size=3),
    free=st.integers(0, 2),
    max_loads=st.integers(0, 4),
)
def test_prefetch_never_evicts_in_use_or_nearer_adapters(
    etas: list[int | None], resident: set[int], protected: set[int], free: int, max_loads: int
) -> None:
    floats = [None if eta is None else float(eta) for eta in etas]
    slots = _slots(dict(zip(_AGENTS, floats, strict=True)))
    assert slots.runtime is not None
    due = slots.runtime.due_owners()
    names = {index: f"lora-{index}" for index in range(8)}
    view = SlotView(
        resident=frozenset({None, *(names[index] for index in resident)}),
        protected=frozenset(names[index] for index in protected),
        free_slots=free,
    )
    plan = slots.prefetch_plan(due, view, max_loads=max_loads)
    assert len(plan) <= max_loads and len(set(plan)) == len(plan)
    assert not set(plan) & (view.resident | view.protected)
    # Replay the plan as SGLang would: free slots first, then the policy's victim.
    resident_now = set(view.resident)
    in_use = set(view.protected)
    for adapter in plan:
        if free > 0:
            free -= 1
        else:
            candidates = {uid for uid in resident_now - in_use if uid is not None}
            victim = slots.victim(candidates)
            assert victim is not None and victim not in view.protected
            victim_rank, adapter_rank = slots.rank(victim), slots.rank(adapter)
            assert victim_rank.owner_rank < adapter_rank.owner_rank  # strictly farther
            resident_now.discard(victim)
        resident_now.add(adapter)
        in_use.add(adapter)  # the prefetcher protects what it just loaded


# ---- the host tier (--max-loaded-loras) -----------------------------------------------------
def test_host_victim_is_the_farthest_owner_then_the_least_recent() -> None:
    slots = _slots({"a0": 5, "a1": 30, "a2": 10, "a3": 30})
    lru_first = ["lora-0", "lora-9", "lora-2", "lora-3", "lora-1"]  # lora-9: no agent uses it
    order = []
    while lru_first:
        victim = slots.host_victim(lru_first)
        assert victim is not None
        order.append(victim)
        lru_first.remove(victim)
    assert order == ["lora-9", "lora-3", "lora-1", "lora-2", "lora-0"]
    assert slots.host_victim([]) is None


def test_host_victim_without_a_runtime_is_sglangs_lru_choice() -> None:
    assert AdapterSlots().host_victim(["lora-4", "lora-1", "lora-2"]) == "lora-4"


def test_dropping_a_namespace_forgets_only_its_agents_adapters() -> None:
    slots = _slots({"a0": 5, "a1": 6})
    slots.declare("other", {"a0": "lora-0"})
    assert slots.drop_namespace(NS) == 2
    assert slots.owners_of("lora-0") == {owner_key("other", "a0")}
    assert slots.owners_of("lora-1") == frozenset()
    assert slots.adapter_of(owner_key(NS, "a0")) is None


@settings(max_examples=200, deadline=None)
@given(
    etas=st.lists(st.integers(0, 20), min_size=8, max_size=8),
    lru_first=st.permutations(range(8)),
    n_candidates=st.integers(1, 8),
)
def test_host_victim_never_unloads_a_nearer_agents_adapter(
    etas: list[int], lru_first: list[int], n_candidates: int
) -> None:
    slots = _slots({agent: float(eta) for agent, eta in zip(_AGENTS, etas, strict=True)})
    candidates = [f"lora-{index}" for index in lru_first[:n_candidates]]
    victim = slots.host_victim(candidates)
    assert victim is not None
    victim_eta = etas[int(victim.split("-")[1])]
    for name in candidates:
        eta = etas[int(name.split("-")[1])]
        assert eta <= victim_eta
        if eta == victim_eta:  # among equals, the least recently used goes
            assert candidates.index(victim) <= candidates.index(name)
