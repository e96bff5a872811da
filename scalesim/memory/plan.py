"""Plan results and the two decision procedures shared by the planner and the index.

Both :class:`~scalesim.memory.planner.MemoryPlanner` (whole lists of resources) and
:class:`~scalesim.memory.index.ResourceIndex` (incremental heaps) feed ranked streams
into :func:`take_victims` and :func:`plan_prefetch`, so the two paths cannot disagree.

Invariants: victims come farthest first and are never locked or pinned (the streams
exclude them); prefetch takes candidates nearest first, stops at the first that does
not fit, and only makes room by evicting resources whose nearest owner calls strictly
later than the candidate's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from scalesim.distance.rank import RankKey, strictly_farther
from scalesim.distance.validation import InvalidEntryError, check_finite

from .resource import Resource


class Ranked(NamedTuple):
    """A resource with its rank at the planning instant."""

    rank: RankKey
    resource: Resource


@dataclass(frozen=True)
class EvictionPlan:
    """Keys to evict, in order, and the bytes that frees."""

    keys: tuple[str, ...]
    freed_bytes: int
    requested_bytes: int

    @property
    def shortfall_bytes(self) -> int:
        """Bytes still missing when the evictable resources ran out (0 if satisfied)."""
        return max(0, self.requested_bytes - self.freed_bytes)


@dataclass(frozen=True)
class PrefetchPlan:
    """Host resources to load to the device (nearest first), and device resources to
    move to the host first to make room (farthest first)."""

    fetch: tuple[str, ...]
    evict: tuple[str, ...]
    fetch_bytes: int
    evict_bytes: int


def check_bytes(value: object, *, what: str) -> int:
    """Return ``value`` if it is an int >= 0 (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidEntryError(f"{what} {value!r} is not an int >= 0")
    return value


def take_victims(victims: Iterator[Ranked], n_bytes: int) -> EvictionPlan:
    """Take victims in stream order until ``n_bytes`` are freed or the stream ends."""
    keys: list[str] = []
    freed = 0
    while freed < n_bytes:
        victim = next(victims, None)
        if victim is None:
            break
        keys.append(victim.resource.key)
        freed += victim.resource.size_bytes
    return EvictionPlan(tuple(keys), freed, n_bytes)


class PrefetchRequest(NamedTuple):
    """Limits of one prefetch decision (times in the caller's unit)."""

    now: float
    window: float  # fetch only resources whose nearest owner calls within this time
    budget_bytes: int  # most bytes to transfer host -> device
    device_free_bytes: int  # bytes free on the device before any eviction

    def checked(self) -> PrefetchRequest:
        window = check_finite(self.window, what="window")
        if window < 0.0:
            raise InvalidEntryError(f"window {self.window!r} is negative")
        return PrefetchRequest(
            check_finite(self.now, what="now"),
            window,
            check_bytes(self.budget_bytes, what="budget_bytes"),
            check_bytes(self.device_free_bytes, what="device_free_bytes"),
        )


def plan_prefetch(
    candidates: Iterator[Ranked], victims: Iterator[Ranked], request: PrefetchRequest
) -> PrefetchPlan:
    """Choose host resources to bring back, nearest first, within the request's limits.

    ``candidates`` must come nearest first; ``victims`` farthest first.
    """
    fetch: list[str] = []
    evict: list[str] = []
    fetch_bytes = evict_bytes = 0
    free_bytes = request.device_free_bytes
    for candidate in candidates:
        remaining = candidate.rank.remaining(request.now)
        size = candidate.resource.size_bytes
        if remaining is None or remaining > request.window:
            break
        if fetch_bytes + size > request.budget_bytes:
            break
        room = _make_room(victims, candidate, needed_bytes=size - free_bytes)
        if room is None:
            break
        evict.extend(victim.resource.key for victim in room)
        made_bytes = sum(victim.resource.size_bytes for victim in room)
        evict_bytes += made_bytes
        free_bytes += made_bytes - size
        fetch.append(candidate.resource.key)
        fetch_bytes += size
    return PrefetchPlan(tuple(fetch), tuple(evict), fetch_bytes, evict_bytes)


def _make_room(
    victims: Iterator[Ranked], candidate: Ranked, *, needed_bytes: int
) -> list[Ranked] | None:
    """Victims freeing ``needed_bytes``, all strictly farther than ``candidate``; or None.

    Returning None ends the plan: the stream is farthest first, so a victim that is not
    farther than this candidate is not farther than any later (farther) one either.
    """
    taken: list[Ranked] = []
    while needed_bytes > 0:
        victim = next(victims, None)
        if victim is None or not strictly_farther(victim.rank, candidate.rank):
            return None
        taken.append(victim)
        needed_bytes -= victim.resource.size_bytes
    return taken
