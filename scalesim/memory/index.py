"""The incremental resource index: O(log n) re-ranks and victims as distances change.

Who calls it: the long-lived per-scheduler runtime (KV prefixes, LoRA slots) and the
overhead benchmark. It subscribes to a :class:`DistanceTable`, so a distance update
re-ranks exactly the owner groups that agent belongs to.

Invariants: resources with the same owner set share one
:class:`~scalesim.memory.lanes.OwnerGroup` (the nearest owner's rank); each lane
(device victims, host victims, host resources to prefetch) orders groups by their
least member and members by recency then key, so it yields exactly the planner's
order. Plans equal :class:`~scalesim.memory.planner.MemoryPlanner`'s for the same
state, because both feed the same procedures in :mod:`scalesim.memory.plan`.
Costs, for g groups of an agent and n resources: updating one agent is
O(g log n) (a group with many owners keeps a lazy owner heap: O(log owners)
amortized); popping a victim, adding or removing a resource is O(log n) amortized;
a plan costs O(log n) per resource it looks at.
"""

from __future__ import annotations

import itertools

from scalesim.distance.rank import OwnerRank, RankKey
from scalesim.distance.table import DistanceTable
from scalesim.distance.validation import InvalidEntryError, check_finite

from .lanes import Lane, Order, OwnerGroup
from .plan import (
    EvictionPlan,
    PrefetchPlan,
    PrefetchRequest,
    check_bytes,
    plan_prefetch,
    take_victims,
)
from .resource import Resource, Tier


class ResourceIndex:
    """Resources ranked by the distances of their owners, kept current incrementally."""

    def __init__(self, table: DistanceTable) -> None:
        self._table = table
        self._resources: dict[str, Resource] = {}
        self._generations: dict[str, int] = {}
        self._counter = itertools.count()
        self._groups: dict[tuple[str, ...], OwnerGroup] = {}
        self._group_of: dict[str, OwnerGroup] = {}
        self._agent_groups: dict[str, dict[int, OwnerGroup]] = {}
        self._agent_ranks: dict[str, OwnerRank] = {}
        self._victims = {
            tier: self._lane(Order.FARTHEST_FIRST) for tier in (Tier.DEVICE, Tier.HOST)
        }
        self._fetchable = self._lane(Order.NEAREST_FIRST)
        table.subscribe(self._on_agent_changed)

    def __len__(self) -> int:
        return len(self._resources)

    def __contains__(self, key: object) -> bool:
        return key in self._resources

    def get(self, key: str) -> Resource | None:
        return self._resources.get(key)

    def rank(self, key: str) -> RankKey:
        """The current rank of a resource in the index (KeyError if absent)."""
        resource = self._resources[key]
        nearest = self._group_of[key].rank
        return RankKey(nearest.known, nearest.neg_eta, resource.last_use, key)

    def add(self, resource: Resource, *, now: float) -> None:
        """Insert a new resource (InvalidEntryError if its key is already present)."""
        if resource.key in self._resources:
            raise InvalidEntryError(f"resource key {resource.key!r} is already indexed")
        self._table.advance(check_finite(now, what="now"))
        key = resource.key
        generation = next(self._counter)
        self._resources[key] = resource
        self._generations[key] = generation
        group = self._join(resource.owners, now=now)
        self._group_of[key] = group
        for lane in self._lanes_of(resource):
            lane.insert(group, key, last_use=resource.last_use, generation=generation)

    def remove(self, key: str) -> Resource:
        """Drop a resource and return its record (KeyError if absent)."""
        resource = self._resources.pop(key)
        del self._generations[key]
        group = self._group_of.pop(key)
        for lane in self._lanes_of(resource):
            lane.discard(group, key)
        self._leave(group)
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
        key = self._victims[tier].first_key()
        return None if key is None else self.remove(key)

    def eviction_order(self, *, tier: Tier, n_bytes: int, now: float) -> EvictionPlan:
        """Same as :meth:`MemoryPlanner.eviction_order` over the indexed resources."""
        check_bytes(n_bytes, what="n_bytes")
        _check_tier(tier)
        self._table.advance(check_finite(now, what="now"))
        victims = self._victims[tier].stream()
        plan = take_victims(victims, n_bytes)
        victims.close()
        return plan

    def prefetch_plan(
        self, *, now: float, window: float, budget_bytes: int, device_free_bytes: int
    ) -> PrefetchPlan:
        """Same as :meth:`MemoryPlanner.prefetch_plan` over the indexed resources."""
        request = PrefetchRequest(now, window, budget_bytes, device_free_bytes).checked()
        self._table.advance(request.now)
        candidates = self._fetchable.stream()
        victims = self._victims[Tier.DEVICE].stream()
        plan = plan_prefetch(candidates, victims, request)
        candidates.close()
        victims.close()
        return plan

    def _lane(self, order: Order) -> Lane:
        return Lane(
            order, resources=self._resources, generations=self._generations, counter=self._counter
        )

    def _lanes_of(self, resource: Resource) -> list[Lane]:
        """The lanes a resource sits in: victims of its tier if evictable; host: fetchable."""
        lanes = []
        if resource.tier is not Tier.NONE and resource.evictable:
            lanes.append(self._victims[resource.tier])
        if resource.tier is Tier.HOST:
            lanes.append(self._fetchable)
        return lanes

    def _join(self, owners: tuple[str, ...], *, now: float) -> OwnerGroup:
        """The group of ``owners``, created (with its agents' ranks) on first use."""
        group = self._groups.get(owners)
        if group is None:
            for agent in owners:
                if agent not in self._agent_ranks:
                    self._agent_ranks[agent] = self._table.owner_rank(agent, now=now)
                    self._agent_groups[agent] = {}
            group = OwnerGroup(owners, number=next(self._counter), ranks=self._agent_ranks)
            self._groups[owners] = group
            for agent in owners:
                self._agent_groups[agent][group.number] = group
        group.size += 1
        return group

    def _leave(self, group: OwnerGroup) -> None:
        """Drop one member; forget the group, and agents left in no group, when empty."""
        group.size -= 1
        if group.size:
            return
        del self._groups[group.owners]
        for agent in group.owners:
            groups = self._agent_groups[agent]
            del groups[group.number]
            if not groups:
                del self._agent_groups[agent], self._agent_ranks[agent]

    def _on_agent_changed(self, agent: str, now: float) -> None:
        groups = self._agent_groups.get(agent)
        if groups is None:
            return
        rank = self._table.owner_rank(agent, now=now)
        if rank == self._agent_ranks[agent]:
            return
        self._agent_ranks[agent] = rank
        for group in groups.values():
            if group.refresh(agent, self._agent_ranks):
                for lane in (*self._victims.values(), self._fetchable):
                    lane.reposition(group)


def _check_tier(tier: Tier) -> None:
    if tier is Tier.NONE:
        raise InvalidEntryError("Tier.NONE holds nothing to evict")
