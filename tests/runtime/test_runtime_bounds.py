"""The runtime's memory stays bounded as agents and namespaces come and go."""

from __future__ import annotations

from runtime_tree import Tree

from scalesim.runtime import AgentMeta, DistanceUpdate, RuntimeConfig, ScaleSimRuntime, owner_key


def test_agents_without_a_path_in_the_tree_are_capped_longest_idle_first() -> None:
    runtime = ScaleSimRuntime(RuntimeConfig(max_idle_agents=10))
    tree = Tree(runtime)
    runtime.owners.record_path(tree.insert((1, 2, 3)), owner_key("town", "keeper"))
    runtime.observe(AgentMeta("keeper", "town", clock=0.0, next_call=1000.0))
    for step in range(100):
        runtime.observe(AgentMeta(f"a{step}", "town", clock=float(step), next_call=step + 5.0))
    assert len(runtime.table) <= 11 and len(runtime.trust) <= 11
    assert runtime.table.lookup(owner_key("town", "keeper"), now=99.0).entry is not None
    assert runtime.table.lookup(owner_key("town", "a99"), now=99.0).entry is not None
    assert runtime.table.lookup(owner_key("town", "a0"), now=99.0).entry is None


def test_stale_entries_go_before_fresh_ones() -> None:
    runtime = ScaleSimRuntime(RuntimeConfig(max_idle_agents=4, horizon=10.0))
    runtime.observe(AgentMeta("old", "town", clock=0.0, next_call=1.0))
    for step in range(3):
        runtime.observe(AgentMeta(f"a{step}", "town", clock=20.0, next_call=25.0))
    runtime.observe(AgentMeta("late", "town", clock=20.0, next_call=30.0))
    assert runtime.table.lookup(owner_key("town", "old"), now=20.0).entry is None
    assert runtime.table.lookup(owner_key("town", "late"), now=20.0).entry is not None


def test_a_quiet_namespace_keeps_its_due_heap_small_beside_a_large_one() -> None:
    """Regression: due heaps were compacted against the whole table's size, so a namespace
    re-predicting one agent grew a heap as large as another namespace's agent count."""
    runtime = ScaleSimRuntime()
    runtime.predict("big", {f"a{i}": 5.0 for i in range(5_000)})
    for step in range(5_000):
        runtime.advance("small", float(step))
        runtime.predict("small", {"solo": step + 3.0})
    assert len(runtime._namespaces["small"].due) <= 2 + 64 + 1


def test_withdrawn_agents_count_as_applied_distance_updates() -> None:
    """Regression: the reply's ``applied`` counted withdrawn agents, the counter did not."""
    runtime = ScaleSimRuntime()
    first = runtime.apply(DistanceUpdate("town", 0.0, 1, {"a": 3.0, "b": 4.0}))
    second = runtime.apply(DistanceUpdate("town", 1.0, 2, {}, unknown=("a",)))
    assert runtime.counters.distance_updates == first.applied + second.applied == 3
