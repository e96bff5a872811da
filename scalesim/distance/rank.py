"""Rank keys: the total order in which per-agent state is evicted (lowest first).

The SGLang eviction strategy returns a :class:`RankKey` from ``get_priority(node)``
and SGLang pops the lowest first; the memory planner sorts by the same key. The key
is built from an absolute predicted next-call time (``eta``), not from the remaining
distance, so a key computed earlier stays comparable with one computed later: ranking
by eta equals ranking by remaining distance at any instant.

Invariants: a key holds only ints, floats and strs; state no owner's next call repeats
ranks lowest, then state whose owners all expect no call; agents with no fresh distance
(unknown, stale) rank below every agent with a finite eta (the runtime gives one with a call
history a finite eta from it, and orders agents expecting no call by their usual interval
between calls); ties are ordered by least recent use, so with no information the order is
exactly LRU.
"""

from __future__ import annotations

from typing import NamedTuple

#: ``OwnerRank.known`` of state no agent's next call is expected to repeat (no owner).
NOBODY = -2
#: ``OwnerRank.known`` of state whose owners all expect no call: the simulation foresees none,
#: but an agent may still come back (a workflow role when a new instance arrives), so it is
#: kept over state no call would reuse.
NO_CALL = -1
#: ``OwnerRank.known`` of an agent with no fresh finite distance.
UNKNOWN = 0
#: ``OwnerRank.known`` of an agent with a fresh finite distance.
KNOWN = 1


class OwnerRank(NamedTuple):
    """How near one agent's next call is; higher means nearer (keep longer)."""

    known: int
    neg_eta: float


#: The rank of an agent about which nothing fresh is known.
UNKNOWN_RANK = OwnerRank(UNKNOWN, 0.0)
#: The rank of state no owner's next call is expected to repeat.
NOBODY_RANK = OwnerRank(NOBODY, 0.0)
#: The rank of an agent that expects no call.
NO_CALL_RANK = OwnerRank(NO_CALL, 0.0)


class RankKey(NamedTuple):
    """Eviction priority of one resource; LOWER means evict sooner.

    Fields, compared in order: ``known`` (NOBODY, NO_CALL, UNKNOWN, KNOWN), ``neg_eta`` (minus
    the nearest owner's predicted next-call time: the farthest first), ``last_use`` (least recent
    first, in the caller's time unit) and ``tiebreak`` (the resource key, so that equal
    ranks never fall back to insertion or hash order).
    """

    known: int
    neg_eta: float
    last_use: float
    tiebreak: str

    @property
    def owner_rank(self) -> OwnerRank:
        """The nearest owner's rank, without the recency and key tie-breaks."""
        return OwnerRank(self.known, self.neg_eta)

    def remaining(self, now: float) -> float | None:
        """Time from ``now`` to the nearest owner's next call (>= 0), or None if unknown."""
        if self.known != KNOWN:
            return None
        return max(0.0, -self.neg_eta - now)


def fetch_order(rank: RankKey) -> tuple[int, float, float, str]:
    """Sort key for prefetching: nearest first, then most recent use, then resource key."""
    return (-rank.known, -rank.neg_eta, -rank.last_use, rank.tiebreak)


def strictly_farther(victim: RankKey, candidate: RankKey) -> bool:
    """True if ``victim``'s nearest owner calls strictly later than ``candidate``'s."""
    return (victim.known, victim.neg_eta) < (candidate.known, candidate.neg_eta)
