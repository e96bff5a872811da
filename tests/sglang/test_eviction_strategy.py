"""ScaleSimStrategy inside SGLang's real UnifiedRadixCache (Python core, CPU pools)."""

from __future__ import annotations

from array import array

import pytest
from scalesim.bench.replay.radix import Admission, RadixTier

from scalesim.distance import DistanceTable
from scalesim.sglang.eviction import NodeOwners, ScaleSimStrategy


class Harness:
    """A 16-token cache whose inserts record the inserting agent as owner."""

    def __init__(self, *, clock_fails: bool = False) -> None:
        self.table = DistanceTable()
        self.owners = NodeOwners()
        self.agents: list[str] = []

        def clock() -> float:
            if clock_fails:
                raise RuntimeError("clock broke")
            return 0.0

        strategy = ScaleSimStrategy(table=self.table, owners=self.owners, clock=clock)
        self.tier = RadixTier(16, strategy=strategy, on_path=self._record)

    def _record(self, leaf: object, end: int, call_index: int) -> None:
        self.owners.record_path(leaf, self.agents[call_index])

    def insert(self, agent: str, tokens: list[int], *, keep_locked: bool = False) -> Admission:
        self.agents.append(agent)
        admission = self.tier.admit(array("q", tokens), len(self.agents) - 1)
        assert admission is not None
        if not keep_locked:
            self.tier.release(admission)
        return admission

    def resident(self, tokens: list[int]) -> int:
        return self.tier.match(array("q", tokens))

    def evict(self, n_tokens: int) -> None:
        from sglang.srt.mem_cache.base_prefix_cache import EvictParams

        self.tier.cache.evict(EvictParams(num_tokens=n_tokens))


A, B, C = [1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]


def test_farthest_agent_is_evicted_first() -> None:
    cache = Harness()
    for agent, tokens in (("a", A), ("b", B), ("c", C)):
        cache.insert(agent, tokens)
    cache.table.update_batch({"a": 1.0, "b": 5.0, "c": 3.0}, now=0.0)
    cache.evict(4)
    assert (cache.resident(A), cache.resident(B), cache.resident(C)) == (4, 0, 4)
    cache.evict(4)
    assert (cache.resident(A), cache.resident(C)) == (4, 0)


def test_shared_prefix_ranks_by_its_nearest_owner() -> None:
    cache = Harness()
    cache.insert("a", [1, 2, 3, 4])
    cache.insert("b", [1, 2, 5, 6])
    cache.insert("c", [7, 8, 9, 10])
    cache.table.update_batch({"a": 10.0, "b": 1.0, "c": 5.0}, now=0.0)
    cache.evict(2)  # a's private tail is the farthest leaf
    assert [cache.resident(t) for t in ([1, 2, 3, 4], [1, 2, 5, 6], [7, 8, 9, 10])] == [2, 4, 4]
    cache.evict(2)  # the shared prefix holds b (distance 1): c goes before it
    assert [cache.resident(t) for t in ([1, 2, 5, 6], [7, 8, 9, 10])] == [4, 0]


def test_no_distances_is_lru_order() -> None:
    cache = Harness()
    for agent, tokens in (("a", A), ("b", B), ("c", C)):
        cache.insert(agent, tokens)
    cache.resident(A)  # touch a: b is now least recently used
    cache.evict(4)
    assert (cache.resident(B), cache.resident(C)) == (0, 4)
    assert cache.resident(A) == 4


def test_locked_node_is_never_evicted() -> None:
    cache = Harness()
    cache.insert("a", A)
    held = cache.insert("b", B, keep_locked=True)
    cache.insert("c", C)
    cache.table.update_batch({"a": 1.0, "b": 9.0, "c": 3.0}, now=0.0)
    cache.evict(4)
    assert (cache.resident(B), cache.resident(C)) == (4, 0)
    cache.tier.release(held)


def test_internal_error_falls_back_to_lru_without_raising(caplog: pytest.LogCaptureFixture) -> None:
    """Guards against a priority exception escaping into SGLang's eviction loop."""
    cache = Harness(clock_fails=True)
    for agent, tokens in (("a", A), ("b", B), ("c", C)):
        cache.insert(agent, tokens)
    cache.evict(4)
    assert (cache.resident(A), cache.resident(B)) == (0, 4)
    assert "falling back to LRU" in caplog.text


def test_constructor_accepts_json_keyword_config() -> None:
    from sglang.srt.mem_cache.utils import _EVICTION_POLICY_FACTORIES as factories
    from sglang.srt.mem_cache.utils import get_eviction_strategy

    factories["scalesim-test"] = ScaleSimStrategy
    try:
        strategy = get_eviction_strategy("scalesim-test", {"horizon": 30.0, "overdue_grace": 5.0})
    finally:
        del factories["scalesim-test"]
    assert isinstance(strategy, ScaleSimStrategy)
    assert (strategy.table.horizon, strategy.table.overdue_grace) == (30.0, 5.0)


def test_parent_split_off_by_a_match_keeps_its_owners() -> None:
    """Regression: a match ending mid-node makes SGLang split off a fresh parent with no
    owner record; it ranked as unknown and went first although it held a's prefix."""
    cache = Harness()
    cache.insert("a", [1, 2, 3, 4])
    cache.insert("b", [5, 6, 7, 8])
    cache.table.update_batch({"a": 1.0, "b": 9.0}, now=0.0)
    assert cache.resident([1, 2]) == 2  # splits a's node into [1, 2] -> [3, 4]
    cache.evict(2)  # b's leaf is the farthest
    assert (cache.resident([1, 2, 3, 4]), cache.resident([5, 6, 7, 8])) == (4, 0)
    parents = {node.parent for node, _ in cache.tier.evictable_branches()}
    assert all(set(cache.owners.of(node)) == {"a"} for node in parents if node.parent)


def test_agent_disowns_the_branch_its_prompt_left() -> None:
    """An agent's old memory version must not stay as near as the agent itself: its next
    call extends the new prompt, so the abandoned branch goes before other agents' state."""
    cache = Harness()
    cache.insert("a", [1, 2, 3, 4])  # persona [1, 2], memory v1 [3, 4]
    cache.insert("b", [9, 10, 11, 12])
    cache.insert("a", [1, 2, 5, 6])  # memory rewritten: v2 [5, 6]
    cache.table.update_batch({"a": 1.0, "b": 5.0}, now=0.0)
    cache.evict(2)
    assert [cache.resident(t) for t in ([1, 2, 3, 4], [1, 2, 5, 6], [9, 10, 11, 12])] == [2, 4, 4]
    cache.insert("a", [1, 2, 5, 6, 7, 8])  # extending the prompt keeps the whole path
    cache.evict(4)
    assert (cache.resident([1, 2, 5, 6, 7, 8]), cache.resident([9, 10, 11, 12])) == (6, 0)
