"""The incremental resource index: O(log n) victims as distances and resources change.

Who calls it: the long-lived per-scheduler runtime (KV prefixes, LoRA slots) and the
overhead benchmark. It subscribes to a :class:`DistanceTable`, so a distance update
re-ranks exactly the resources that agent owns.

Invariants: lazy heaps hold (rank, generation) entries; an entry is live only while its
generation is the resource's current one, so a re-rank is one push and stale entries
are dropped when they surface (heaps are rebuilt once they hold twice the live count).
Plans equal :class:`~scalesim.memory.planner.MemoryPlanner`'s for the same state,
because both feed the same procedures in :mod:`scalesim.memory.plan`.
Costs: updating one agent is O(r log n) for its r resources (a shared resource keeps a
lazy heap of its owners, so its rank is O(log owners) amortized); popping a victim is
O(log n) amortized.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Generator

from scalesim.distance.rank import UNKNOWN_RANK, OwnerRank, RankKey, fetch_order
from scalesim.distance.table import DistanceTable
from scalesim.distance.validation import InvalidEntryError, check_finite

from .plan import (
    EvictionPlan,
    PrefetchPlan,
    PrefetchRequest,
    Ranked,
    check_bytes,
    plan_prefetch,
    take_victims,
)
from .resource import Resource, Tier

_Entry = tuple[RankKey, int]  # (rank, generation); rank.tiebreak is the resource key
_FetchEntry = tuple[tuple[int, float, float, str], int]  # (fetch_order(rank), generation)
_OwnerEntry = tuple[int, float, str]  # (-known, eta, agent): the nearest owner on top


class ResourceIndex:
    """Resources ranked by the distances of their owners, kept current incrementally."""

    def __init__(self, table: DistanceTable) -> None:
        self._table = table
        self._resources: dict[str, Resource] = {}
        self._ranks: dict[str, RankKey] = {}
        self._generations: dict[str, int] = {}
        self._counter = itertools.count()
        self._by_agent: dict[str, set[str]] = {}
        self._agent_ranks: dict[str, OwnerRank] = {}
        self._owner_heaps: dict[str, list[_OwnerEntry]] = {}
        self._victims: dict[Tier, list[_Entry]] = {Tier.DEVICE: [], Tier.HOST: []}
        self._fetchable: list[_FetchEntry] = []
        table.subscribe(self._on_agent_changed)

    def __len__(self) -> int:
        return len(self._resources)

    def __contains__(self, key: object) -> bool:
        return key in self._resources

    def get(self, key: str) -> Resource | None:
        return self._resources.get(key)

    def rank(self, key: str) -> RankKey:
        """The current rank of a resource in the index (KeyError if absent)."""
        return self._ranks[key]

    def add(self, resource: Resource, *, now: float) -> None:
        """Insert a new resource (InvalidEntryError if its key is already present)."""
        if resource.key in self._resources:
            raise InvalidEntryError(f"resource key {resource.key!r} is already indexed")
        self._table.advance(check_finite(now, what="now"))
        self._resources[resource.key] = resource
        for agent in resource.owners:
            if agent not in self._by_agent:
                self._by_agent[agent] = set()
                self._agent_ranks[agent] = self._table.owner_rank(agent, now=now)
            self._by_agent[agent].add(resource.key)
        if len(resource.owners) > 1:
            self._owner_heaps[resource.key] = self._owner_heap(resource.owners)
        self._rerank(resource.key)

    def remove(self, key: str) -> Resource:
        """Drop a resource and return its record (KeyError if absent)."""
        resource = self._resources.pop(key)
        del self._ranks[key], self._generations[key]
        self._owner_heaps.pop(key, None)
        for agent in resource.owners:
            keys = self._by_agent[agent]
            keys.discard(key)
            if not keys:
                del self._by_agent[agent], self._agent_ranks[agent]
        return resource

    def update(self, resource: Resource, *, now: float) -> None:
        """Replace the record with the same key (tier, last use, lock or owners changed)."""
        self.remove(resource.key)
        self.add(resource, now=now)

    def pop_victim(self, tier: Tier, *, now: float) -> Resource | None:
        """Remove and return the next evictable resource of ``tier``, or None if none.

        The caller re-adds it with its new tier once it has moved.
        """
        _check_tier(tier)
        self._table.advance(check_finite(now, what="now"))
        for victim in self._live_victims(tier, restore=False):
            return self.remove(victim.resource.key)
        return None

    def eviction_order(self, *, tier: Tier, n_bytes: int, now: float) -> EvictionPlan:
        """Same as :meth:`MemoryPlanner.eviction_order` over the indexed resources."""
        check_bytes(n_bytes, what="n_bytes")
        _check_tier(tier)
        self._table.advance(check_finite(now, what="now"))
        victims = self._live_victims(tier, restore=True)
        plan = take_victims(victims, n_bytes)
        victims.close()
        return plan

    def prefetch_plan(
        self, *, now: float, window: float, budget_bytes: int, device_free_bytes: int
    ) -> PrefetchPlan:
        """Same as :meth:`MemoryPlanner.prefetch_plan` over the indexed resources."""
        request = PrefetchRequest(now, window, budget_bytes, device_free_bytes).checked()
        self._table.advance(request.now)
        candidates = self._live_candidates()
        victims = self._live_victims(Tier.DEVICE, restore=True)
        plan = plan_prefetch(candidates, victims, request)
        candidates.close()
        victims.close()
        return plan

    def _on_agent_changed(self, agent: str, now: float) -> None:
        keys = self._by_agent.get(agent)
        if keys is None:
            return
        rank = self._table.owner_rank(agent, now=now)
        if rank == self._agent_ranks[agent]:
            return
        self._agent_ranks[agent] = rank
        for key in keys:  # any order: ranks are unique, so heap order does not depend on it
            owner_heap = self._owner_heaps.get(key)
            if owner_heap is not None:
                heapq.heappush(owner_heap, (-rank.known, -rank.neg_eta, agent))
            self._rerank(key)

    def _owner_heap(self, owners: tuple[str, ...]) -> list[_OwnerEntry]:
        heap = [(-self._agent_ranks[a].known, -self._agent_ranks[a].neg_eta, a) for a in owners]
        heapq.heapify(heap)
        return heap

    def _nearest_owner(self, resource: Resource) -> OwnerRank:
        """The rank of the resource's nearest owner, pruning outdated owner entries."""
        if not resource.owners:
            return UNKNOWN_RANK
        if len(resource.owners) == 1:
            return self._agent_ranks[resource.owners[0]]
        heap = self._owner_heaps[resource.key]
        while True:
            negated_known, eta, agent = heap[0]
            rank = self._agent_ranks[agent]
            if rank.known == -negated_known and rank.neg_eta == -eta:
                break
            heapq.heappop(heap)
        if len(heap) > 2 * len(resource.owners) + 8:
            self._owner_heaps[resource.key] = self._owner_heap(resource.owners)
        return OwnerRank(rank.known, rank.neg_eta)

    def _rerank(self, key: str) -> None:
        resource = self._resources[key]
        nearest = self._nearest_owner(resource)
        rank = RankKey(nearest.known, nearest.neg_eta, resource.last_use, key)
        if self._ranks.get(key) == rank:
            return
        generation = next(self._counter)
        self._ranks[key] = rank
        self._generations[key] = generation
        tier = resource.tier
        if tier is not Tier.NONE and resource.evictable:
            heap = self._victims[tier]
            heapq.heappush(heap, (rank, generation))
            if len(heap) > 2 * len(self._resources) + 64:
                self._compact()
        if tier is Tier.HOST:
            heapq.heappush(self._fetchable, (fetch_order(rank), generation))
            if len(self._fetchable) > 2 * len(self._resources) + 64:
                self._compact()

    def _is_live(self, key: str, generation: int) -> bool:
        return self._generations.get(key) == generation

    def _live_victims(self, tier: Tier, *, restore: bool) -> Generator[Ranked, None, None]:
        """Evictable resources of ``tier``, lowest rank first; with ``restore`` the heap
        gets back every live entry it handed out when the iterator is closed."""
        heap = self._victims[tier]
        handed_out: list[_Entry] = []
        try:
            while heap:
                entry = heapq.heappop(heap)
                if self._is_live(entry[0].tiebreak, entry[1]):
                    handed_out.append(entry)
                    yield Ranked(entry[0], self._resources[entry[0].tiebreak])
        finally:
            for entry in handed_out if restore else ():
                heapq.heappush(heap, entry)

    def _live_candidates(self) -> Generator[Ranked, None, None]:
        """Host resources nearest first; live entries go back when the iterator closes."""
        handed_out: list[_FetchEntry] = []
        try:
            while self._fetchable:
                entry = heapq.heappop(self._fetchable)
                key = entry[0][3]
                if self._is_live(key, entry[1]):
                    handed_out.append(entry)
                    yield Ranked(self._ranks[key], self._resources[key])
        finally:
            for entry in handed_out:
                heapq.heappush(self._fetchable, entry)

    def _compact(self) -> None:
        """Rebuild a heap once dead entries outnumber the live resources."""
        limit = 2 * len(self._resources) + 64
        for tier, heap in self._victims.items():
            if len(heap) > limit:
                live = [item for item in heap if self._is_live(item[0].tiebreak, item[1])]
                heapq.heapify(live)
                self._victims[tier] = live
        if len(self._fetchable) > limit:
            fetchable = [item for item in self._fetchable if self._is_live(item[0][3], item[1])]
            heapq.heapify(fetchable)
            self._fetchable = fetchable


def _check_tier(tier: Tier) -> None:
    if tier is Tier.NONE:
        raise InvalidEntryError("Tier.NONE holds nothing to evict")
