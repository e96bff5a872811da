"""Odds of reuse: how likely an agent's next call repeats its path to a depth, and how they rank.

An agent whose memory is rewritten after some of its calls (a reflection, a repost) owns a
memory that is dead until its next call shows it; its state ranks by its time left over the
odds that its next call repeats that deep.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from runtime_tree import Tree

from scalesim.runtime import PrefixOwnership, RuntimeConfig, ScaleSimRuntime
from scalesim.runtime.reuse import KEPT_KEEP, PathReuse

PERSONA = tuple(range(100, 132))  # 32 tokens every prompt of the agent repeats


def _run(start: int, size: int) -> tuple[int, ...]:
    return tuple(range(start, start + size))


def _keep_share(wholes: list[bool]) -> float:
    """The documented estimate: decayed share of transitions that repeated what was owned,
    counting one prior transition that did and one that did not."""
    kept = transitions = 0.0
    for whole in wholes:
        kept = kept * KEPT_KEEP + whole
        transitions = transitions * KEPT_KEEP + 1.0
    return (kept + 1.0) / (transitions + 2.0)


def _memory_paths(rewrites: list[bool]) -> list[tuple[int, ...]]:
    """Persona then memory (no tail); after each call the memory is rewritten or kept."""
    version, paths = 0, []
    for rewrite in [False, *rewrites]:
        version += rewrite
        paths.append(PERSONA + _run(1000 * (version + 1), 16))
    return paths


def test_an_agent_that_rewrites_its_memory_sometimes_has_even_odds_only_on_its_persona() -> None:
    reuse = PathReuse(chunk=1)
    rewrites = [False, False, True, False, False, True, False]
    for path in _memory_paths(rewrites):
        reuse.record("ns|a", path)
    assert reuse.odds("ns|a", len(PERSONA)) == 1.0
    expected = _keep_share([not rewrite for rewrite in rewrites])
    assert reuse.odds("ns|a", len(PERSONA) + 16) == pytest.approx(expected)
    assert expected < 0.8


def test_an_agent_that_never_rewrites_has_even_odds_everywhere() -> None:
    reuse = PathReuse(chunk=1)
    for path in _memory_paths([False] * 6):
        reuse.record("ns|a", path)
    assert reuse.odds("ns|a", len(PERSONA) + 16) == 1.0
    assert reuse.odds("ns|unknown", 10_000) == 1.0


def test_reuse_rounded_down_to_a_chunk_is_not_a_rewrite() -> None:
    """The server measures reuse in whole chunks (16 tokens): a growing memory that ends
    inside a chunk is repeated in full but measured up to a chunk short of what was owned."""
    reuse = PathReuse(chunk=16)
    memory: tuple[int, ...] = ()
    for k in range(8):
        memory += _run(1000 + 10 * k, 6)
        reuse.record("ns|a", PERSONA + memory + _run(100 * (k + 1), 8))
    assert reuse.odds("ns|a", len(PERSONA) + len(memory)) == pytest.approx(_keep_share([True] * 7))


def test_the_tail_of_a_first_path_owned_whole_is_not_a_rewrite() -> None:
    """A first path is owned whole, its observation too; the next call not repeating that
    observation says nothing about rewrites."""
    reuse = PathReuse(chunk=1)
    for k in range(5):
        reuse.record("ns|a", PERSONA + _run(100 * (k + 1), 8))
    assert reuse.odds("ns|a", len(PERSONA) + 8) == pytest.approx(_keep_share([True] * 4))


def test_a_request_recorded_in_chunks_counts_its_whole_path() -> None:
    """Chunked prefill records a request's first chunk before the rest: the short first chunk
    repeats less than the agent owned, which is not a rewrite once the request is whole."""
    reuse = PathReuse(chunk=1)
    for path in _memory_paths([False, True]):  # one real rewrite: the persona alone is sure
        reuse.record("ns|a", path)
    for k in range(3):
        path = _memory_paths([False, True])[-1]
        reuse.record("ns|a", path[:20], request=f"r{k}")
        reuse.record("ns|a", path, request=f"r{k}")
    expected = _keep_share([True, False, True, True, True])
    assert reuse.odds("ns|a", len(PERSONA) + 16) == pytest.approx(expected)


def _runtime(ownership: PrefixOwnership = PrefixOwnership.LEARNED) -> ScaleSimRuntime:
    return ScaleSimRuntime(RuntimeConfig(reuse_chunk_tokens=1, prefix_ownership=ownership))


@pytest.mark.parametrize("ownership", list(PrefixOwnership))
def test_memory_rewritten_now_and_then_ranks_below_a_later_callers_kept_memory(
    ownership: PrefixOwnership,
) -> None:
    """``a`` calls at 10, ``b`` at 12; ``a``'s calls rewrote its memory every other time, ``b``'s
    never. Learned ownership evicts ``a``'s memory before ``b``'s (10 / odds > 12) but keeps
    ``a``'s persona over ``b``'s; whole ownership ranks by the calls alone."""
    runtime = _runtime(ownership)
    tree = Tree(runtime)
    ends = {}
    for agent, rewrites in (("a", [True, False] * 3), ("b", [False] * 6)):
        persona = tuple(token + (0 if agent == "a" else 5000) for token in PERSONA)
        version = 0
        for rewrite in [False, *rewrites]:
            version += rewrite
            memory = _run(10_000 * (version + 1) + (0 if agent == "a" else 500), 16)
            path = persona + memory
            ends[agent] = tree.insert(path)
            runtime.record_path(ends[agent], f"ns|{agent}", tokens=path)
    runtime.advance("ns", 0.0)
    runtime.predict("ns", {"a": 10.0, "b": 12.0})
    a_memory, b_memory = ends["a"], ends["b"]
    assert a_memory.parent is not None and b_memory.parent is not None
    assert a_memory.parent.key == tuple(PERSONA)  # split off at a's first rewrite
    a_rank, b_rank = runtime.node_rank(a_memory, 0.0), runtime.node_rank(b_memory, 0.0)
    if ownership is PrefixOwnership.LEARNED:
        assert a_rank < b_rank
        assert runtime.node_rank(a_memory.parent, 0.0) > b_rank
    else:
        assert a_rank > b_rank


_rewrites = st.lists(st.booleans(), min_size=1, max_size=12)


@given(_rewrites, st.integers(0, 80), st.integers(0, 80))
def test_odds_are_a_probability_that_never_grows_with_depth(
    rewrites: list[bool], shallow: int, extra: int
) -> None:
    """Property: odds lie in (0, 1], are 1 within what every recent call repeated, and a deeper
    part of the path is never likelier to be repeated than a shallower one."""
    reuse = PathReuse(chunk=1)
    for path in _memory_paths(rewrites):
        reuse.record("ns|a", path)
    low, high = reuse.odds("ns|a", shallow), reuse.odds("ns|a", shallow + extra)
    assert 0.0 < high <= low <= 1.0
    if shallow <= len(PERSONA):
        assert low == 1.0
