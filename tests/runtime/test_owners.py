"""Node ownership: latest path only, owners survive splits, memory bounded by the tree."""

from __future__ import annotations

from runtime_tree import Tree

from scalesim.runtime import ScaleSimRuntime


def _tree() -> tuple[ScaleSimRuntime, Tree]:
    runtime = ScaleSimRuntime()
    return runtime, Tree(runtime)


def test_path_is_owned_up_to_the_root() -> None:
    runtime, tree = _tree()
    end = tree.insert((1, 2, 3))
    runtime.owners.record_path(end, "ns|a")
    assert set(runtime.owners.of(end)) == {"ns|a"}
    assert runtime.owners.end_of("ns|a") is end


def test_split_parent_keeps_owners_after_child_removal() -> None:
    """Regression (issue 9.1): a parent split off a node whose child was later evicted had
    no owners and ranked as unknown, so a near agent's prefix went first."""
    runtime, tree = _tree()
    end = tree.insert((1, 2, 3, 4))
    runtime.owners.record_path(end, "ns|a")
    prefix = tree.insert((1, 2))  # split: new parent (1, 2) above (3, 4)
    assert prefix is end.parent
    tree.remove(end)
    assert set(runtime.owners.of(prefix)) == {"ns|a"}
    assert runtime.owners.end_of("ns|a") is prefix


def test_diverging_prompt_disowns_the_old_branch() -> None:
    runtime, tree = _tree()
    old = tree.insert((1, 2, 3, 4))
    runtime.owners.record_path(old, "ns|a")
    new = tree.insert((1, 2, 5, 6))
    runtime.owners.record_path(new, "ns|a")
    shared = new.parent
    assert shared is old.parent
    assert set(runtime.owners.of(old)) == set()
    assert set(runtime.owners.of(shared)) == {"ns|a"}


def test_insert_diverging_mid_node_keeps_the_other_branch_owners() -> None:
    """The parent created when b's insert splits a's node owns a's agent too."""
    runtime, tree = _tree()
    a_end = tree.insert((1, 2, 3, 4))
    runtime.owners.record_path(a_end, "ns|a")
    b_end = tree.insert((1, 2, 7, 8))
    runtime.owners.record_path(b_end, "ns|b")
    assert set(runtime.owners.of(b_end.parent)) == {"ns|a", "ns|b"}


def test_records_are_dropped_when_the_tree_lets_nodes_go() -> None:
    runtime, tree = _tree()
    for agent in range(50):
        end = tree.insert((agent + 1000, agent, 1, 2))
        runtime.owners.record_path(end, f"ns|a{agent}")
    assert (runtime.owners.n_nodes, runtime.owners.n_owners) == (50, 50)
    for node in tree.nodes():
        tree.remove(node)
    assert (runtime.owners.n_nodes, runtime.owners.n_owners) == (0, 0)


def test_drop_removes_an_owner_everywhere() -> None:
    runtime, tree = _tree()
    end = tree.insert((1, 2, 3))
    runtime.owners.record_path(end, "ns|a")
    assert runtime.owners.drop(["ns|a", "ns|never"]) == 1
    assert set(runtime.owners.of(end)) == set()
    assert runtime.owners.n_nodes == 0
