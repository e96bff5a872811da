"""Hypothesis properties of the runtime: rank order, bounded ownership, determinism."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_tree import Tree

from scalesim.memory.resource import Resource, Tier
from scalesim.runtime import DistanceUpdate, ScaleSimRuntime, owner_key

_AGENTS = [f"a{index}" for index in range(8)]
_distances = st.dictionaries(
    st.sampled_from(_AGENTS), st.one_of(st.none(), st.integers(0, 50).map(float)), max_size=8
)
_owner_sets = st.lists(st.frozensets(st.sampled_from(_AGENTS), max_size=3), min_size=2, max_size=10)


def _oracle(owners: frozenset[str], distances: dict[str, float | None], last_use: float) -> tuple:
    """Independent order: any owner with a known distance beats none; the nearest known owner
    decides (sooner: keep longer); an owner with no distance beats owners that all expect no
    call, which beat no owner at all; then recency."""
    known = [distances[agent] for agent in owners if distances.get(agent) is not None]
    if known:
        return (1, -min(known), last_use)  # type: ignore[type-var]
    if any(agent not in distances for agent in owners):
        return (0, 0.0, last_use)
    return (-1 if owners else -2, 0.0, last_use)


@given(clock=st.integers(0, 100).map(float), distances=_distances, owner_sets=_owner_sets)
def test_eviction_order_matches_the_distance_oracle(
    clock: float, distances: dict[str, float | None], owner_sets: list[frozenset[str]]
) -> None:
    runtime = ScaleSimRuntime()
    absolute = {agent: None if d is None else clock + d for agent, d in distances.items()}
    runtime.apply(DistanceUpdate("sim", clock, None, absolute))
    keyed = [
        (runtime.rank_key([owner_key("sim", a) for a in owners], float(i), tiebreak=f"{i:03d}"), i)
        for i, owners in enumerate(owner_sets)
    ]
    expected = sorted(range(len(owner_sets)), key=lambda i: _oracle(owner_sets[i], distances, i))
    assert [index for _, index in sorted(keyed)] == expected


_ops = st.lists(
    st.tuples(st.sampled_from(["insert", "remove"]), st.integers(0, 30), st.integers(0, 3)),
    max_size=60,
)


@settings(deadline=None)
@given(ops=_ops)
def test_ownership_is_bounded_by_the_tree(ops: list[tuple[str, int, int]]) -> None:
    runtime = ScaleSimRuntime()
    tree = Tree(runtime)
    for op, agent, variant in ops:
        if op == "insert":
            end = tree.insert((agent % 5, agent, variant, 7))
            runtime.owners.record_path(end, owner_key("sim", f"a{agent}"))
        else:
            leaves = sorted((n for n in tree.nodes() if not n.children), key=lambda n: n.id)
            if leaves:
                tree.remove(leaves[agent % len(leaves)])
        nodes = tree.nodes()
        assert runtime.owners.n_nodes <= len(nodes)
        ids = {node.id for node in nodes}
        for node in nodes:
            for owner in runtime.owners.of(node):
                end = runtime.owners.end_of(owner)
                assert end is not None and end.id in ids
    for node in sorted(tree.nodes(), key=lambda n: -_depth(n)):
        tree.remove(node)
    assert (runtime.owners.n_nodes, runtime.owners.n_owners) == (0, 0)


def _depth(node: object) -> int:
    depth = 0
    while getattr(node, "parent", None) is not None:
        node, depth = node.parent, depth + 1  # type: ignore[attr-defined]
    return depth


@given(
    updates=st.lists(st.tuples(st.integers(0, 5), _distances), min_size=1, max_size=6),
    sizes=st.lists(st.integers(1, 20), min_size=8, max_size=8),
    free=st.integers(0, 40),
)
def test_identical_inputs_give_identical_decisions(
    updates: list[tuple[int, dict[str, float | None]]], sizes: list[int], free: int
) -> None:
    def decide() -> tuple[object, ...]:
        runtime = ScaleSimRuntime()
        clock = 0.0
        for step, distances in updates:
            clock += step
            absolute = {a: None if d is None else clock + d for a, d in distances.items()}
            runtime.apply(DistanceUpdate("sim", clock, None, absolute))
        owners = [owner_key("sim", agent) for agent in _AGENTS]
        resources = [
            Resource(owner, (owner,), size, Tier.HOST if i % 2 else Tier.DEVICE, float(i))
            for i, (owner, size) in enumerate(zip(owners, sizes, strict=True))
        ]
        plan = runtime.plan_prefetch(resources, free_bytes=free, budget_bytes=60)
        ranks = [runtime.rank_key([owner], 0.0) for owner in owners]
        return (runtime.due_owners(), plan, ranks)

    assert decide() == decide()
