"""ScaleSimStrategy inside SGLang's real UnifiedRadixCache (Python core, CPU pools).

The cache is the replay's ``RadixTier``, which installs ScaleSim's ``TREE_HOOKS``: node splits
and removals reach the runtime's ownership exactly as in the live server.
"""

from __future__ import annotations

from array import array
from typing import Any

import pytest
from scalesim.bench.replay.radix import Admission, RadixTier
from scalesim.patches.mem_cache import build_eviction_strategy
from scalesim.patches.registration import register_and_verify, resolve_target
from scalesim.patches.table import TREE_HOOKS
from sglang.srt.mem_cache.base_prefix_cache import MatchPrefixParams
from sglang.srt.mem_cache.radix_cache import RadixKey

from scalesim.distance import RankKey
from scalesim.runtime import DEFAULT_NAMESPACE, ScaleSimRuntime, owner_key
from scalesim.sglang.eviction import ScaleSimStrategy


def owner(agent: str) -> str:
    return owner_key(DEFAULT_NAMESPACE, agent)


class BrokenRuntime(ScaleSimRuntime):
    """A runtime whose every node rank fails (an internal error inside ScaleSim)."""

    def node_rank(self, node: Any, last_use: float) -> RankKey:
        raise RuntimeError("rank broke")


class Harness:
    """A 16-token cache whose inserts make the inserting agent own the whole inserted path."""

    def __init__(self, runtime: ScaleSimRuntime | None = None) -> None:
        self.runtime = runtime if runtime is not None else ScaleSimRuntime()
        self.agents: list[str] = []
        self.tier = RadixTier(16, strategy=ScaleSimStrategy(self.runtime), on_path=self._record)

    def _record(self, leaf: Any, end: int, call_index: int) -> None:
        agent = owner(self.agents[call_index])
        self.runtime.owners.record_path(leaf, agent)

    def insert(self, agent: str, tokens: list[int], *, keep_locked: bool = False) -> Admission:
        self.agents.append(agent)
        admission = self.tier.admit(array("q", tokens), len(self.agents) - 1)
        assert admission is not None
        if not keep_locked:
            self.tier.release(admission)
        return admission

    def predict(self, next_calls: dict[str, float], *, clock: float = 0.0) -> None:
        """Move the clock to ``clock`` and set absolute next calls (steps)."""
        self.runtime.advance(DEFAULT_NAMESPACE, clock)
        self.runtime.predict(DEFAULT_NAMESPACE, dict(next_calls))

    def resident(self, tokens: list[int]) -> int:
        return self.tier.resident(array("q", tokens))

    def touch(self, tokens: list[int]) -> None:
        """Use the cached prefix of ``tokens``, as a request's match does."""
        self.tier.cache.match_prefix(MatchPrefixParams(key=RadixKey(array("q", tokens))))

    def evict(self, n_tokens: int) -> None:
        self.tier.evict(n_tokens)

    def leaf_owners(self) -> dict[tuple[int, ...], set[str]]:
        """Owners of every evictable device leaf, by the leaf's own tokens."""
        leaves = self.tier.cache.tree_core.evictable_device_leaves
        return {tuple(leaf.key.token_ids): set(self.runtime.owners.of(leaf)) for leaf in leaves}


A, B, C = [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]


def test_farthest_agent_is_evicted_first() -> None:
    cache = Harness()
    for agent, tokens in (("a", A), ("b", B), ("c", C)):
        cache.insert(agent, tokens)
    cache.predict({"a": 1.0, "b": 5.0, "c": 3.0})
    cache.evict(4)
    assert (cache.resident(A), cache.resident(B), cache.resident(C)) == (4, 0, 4)
    cache.evict(4)
    assert (cache.resident(A), cache.resident(C)) == (4, 0)


def test_ranks_are_relative_to_the_namespace_clock() -> None:
    """Moving the clock changes no order: an eta ranks by its distance from the clock."""
    cache = Harness()
    for agent, tokens in (("a", A), ("b", B), ("c", C)):
        cache.insert(agent, tokens)
    cache.predict({"a": 101.0, "b": 105.0, "c": 103.0}, clock=100.0)
    cache.evict(4)
    assert (cache.resident(A), cache.resident(B), cache.resident(C)) == (4, 0, 4)


def test_shared_prefix_ranks_by_its_nearest_owner() -> None:
    cache = Harness()
    cache.insert("a", [1, 2, 3, 4])
    cache.insert("b", [1, 2, 5, 6])
    cache.insert("c", [7, 8, 9, 10])
    cache.predict({"a": 10.0, "b": 1.0, "c": 5.0})
    cache.evict(2)  # a's private tail is the farthest leaf
    assert [cache.resident(t) for t in ([1, 2, 3, 4], [1, 2, 5, 6], [7, 8, 9, 10])] == [2, 4, 4]
    cache.evict(2)  # the shared prefix holds b (distance 1): c goes before it
    assert [cache.resident(t) for t in ([1, 2, 5, 6], [7, 8, 9, 10])] == [4, 0]


def test_no_distances_is_lru_order() -> None:
    cache = Harness()
    for agent, tokens in (("a", A), ("b", B), ("c", C)):
        cache.insert(agent, tokens)
    cache.touch(A)  # b is now least recently used
    cache.evict(4)
    assert (cache.resident(B), cache.resident(C)) == (0, 4)
    assert cache.resident(A) == 4


def test_locked_node_is_never_evicted() -> None:
    cache = Harness()
    cache.insert("a", A)
    held = cache.insert("b", B, keep_locked=True)
    cache.insert("c", C)
    cache.predict({"a": 1.0, "b": 9.0, "c": 3.0})
    cache.evict(4)
    assert (cache.resident(B), cache.resident(C)) == (4, 0)
    cache.tier.release(held)


def test_internal_error_falls_back_to_lru_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    """Guards against a priority exception escaping into SGLang's eviction loop."""
    cache = Harness(BrokenRuntime())
    for agent, tokens in (("a", A), ("b", B), ("c", C)):
        cache.insert(agent, tokens)
    cache.predict({"a": 9.0, "b": 1.0, "c": 1.0})  # ignored: every rank fails
    cache.evict(4)
    assert (cache.resident(A), cache.resident(B)) == (0, 4)
    assert "falling back to LRU" in caplog.text


def test_policy_config_reaches_the_runtime() -> None:
    """``--radix-eviction-policy scalesim`` with JSON config builds a runtime with those keys;
    every other name stays SGLang's."""
    from sglang.srt.mem_cache.evict_policy import LRUStrategy
    from sglang.srt.mem_cache.utils import get_eviction_strategy

    config = {"horizon": 30.0, "overdue_grace": 5.0}
    strategy = build_eviction_strategy(get_eviction_strategy, "scalesim", config)
    assert isinstance(strategy, ScaleSimStrategy)
    table = strategy.runtime.table
    assert (table.horizon, table.overdue_grace) == (30.0, 5.0)
    assert isinstance(build_eviction_strategy(get_eviction_strategy, "lru"), LRUStrategy)


def test_parent_split_off_by_a_match_keeps_its_owners_after_the_child_is_evicted() -> None:
    """Regression (issue 9, item 1): a match ending mid-node makes SGLang split off a fresh
    parent. Without the split hook it had no owner record, so once its child was evicted it
    ranked as unknown and went first although it held a's prefix. (The old test checked the
    parents of evictable branches, an empty set here, so it asserted nothing.)"""
    cache = Harness()
    cache.insert("a", [1, 2, 3, 4])
    cache.insert("b", [5, 6, 7, 8])
    cache.touch([1, 2])  # a match ending mid-node splits a's node into [1, 2] -> [3, 4]
    assert cache.leaf_owners() == {(3, 4): {owner("a")}, (5, 6, 7, 8): {owner("b")}}
    cache.predict({"a": 9.0, "b": 5.0})
    cache.evict(2)  # a is now the farthest: its leaf [3, 4] goes, the parent [1, 2] stays
    assert (cache.resident([1, 2, 3, 4]), cache.resident([5, 6, 7, 8])) == (2, 4)
    assert cache.leaf_owners() == {(1, 2): {owner("a")}, (5, 6, 7, 8): {owner("b")}}
    cache.predict({"a": 2.0}, clock=1.0)  # a calls soon again: its prefix outranks b
    cache.evict(2)
    assert (cache.resident([1, 2]), cache.resident([5, 6, 7, 8])) == (2, 0)
    cache.evict(2)
    assert cache.resident([1, 2]) == 0


def test_agent_disowns_the_branch_its_prompt_left() -> None:
    """An agent's old memory version must not stay as near as the agent itself: its next
    call extends the new prompt, so the abandoned branch goes before other agents' state."""
    cache = Harness()
    cache.insert("a", [1, 2, 3, 4])  # persona [1, 2], memory v1 [3, 4]
    cache.insert("b", [9, 10, 11, 12])
    cache.insert("a", [1, 2, 5, 6])  # memory rewritten: v2 [5, 6]
    cache.predict({"a": 1.0, "b": 5.0})
    cache.evict(2)
    assert [cache.resident(t) for t in ([1, 2, 3, 4], [1, 2, 5, 6], [9, 10, 11, 12])] == [2, 4, 4]
    cache.insert("a", [1, 2, 5, 6, 7, 8])  # extending the prompt keeps the whole path
    cache.evict(4)
    assert (cache.resident([1, 2, 5, 6, 7, 8]), cache.resident([9, 10, 11, 12])) == (6, 0)


def _layers_holding(target: str, hook: object) -> int:
    """Layers of ``target``'s wrapper chain built around ``hook``."""
    count, layer = 0, resolve_target(target)
    while layer is not None:
        cells = getattr(layer, "__closure__", None) or ()
        count += any(cell.cell_contents is hook for cell in cells)
        layer = getattr(layer, "__wrapped__", None)
    return count


def test_tree_hooks_install_once_however_many_caches_are_built() -> None:
    """Regression: every replay cache registers TREE_HOOKS; a second registration failed
    verification (the target no longer unwrapped to the function seen before it) and could
    wrap a target twice, running each hook twice per split or removal."""
    Harness()
    Harness()
    register_and_verify(TREE_HOOKS)
    assert [_layers_holding(spec.target, spec.hook) for spec in TREE_HOOKS] == [1, 1]
