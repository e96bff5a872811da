"""The versioned per-agent distance table with staleness.

Who calls it: the control endpoint (whole-table pushes), the request path (per-request
hints), estimators (batches), and the memory planner / SGLang eviction strategy, which
read :meth:`DistanceTable.rank_key`. Time is always passed in (``now``, in the caller's
unit: seconds or simulation steps) and never read from a clock, so every
tensor-parallel rank that sees the same inputs makes the same decisions.

Invariants:
- Entries store a predicted next-call time ``eta = set_at + distance``; ranking by eta
  equals ranking by remaining distance at any instant and needs no recomputation.
- An entry older than ``horizon`` (``now > set_at + horizon``) reads as stale: it ranks
  like an agent about which nothing is known. So does a prediction overdue by more than
  ``overdue_grace`` (``now > eta + overdue_grace``): a call that was expected and did not
  come is no longer information, and must not keep the agent's state as "nearest".
- Fresher information wins; at equal time a client hint or table beats an estimate;
  an older table version never overwrites a newer one.
- Every mutating call validates all of its input before it changes anything.
"""

from __future__ import annotations

import enum
import heapq
import math
from collections.abc import Callable, Iterable, Mapping
from typing import NamedTuple

from .rank import KNOWN, UNKNOWN_RANK, OwnerRank, RankKey
from .validation import InvalidEntryError, check_distance, check_finite, check_id, check_positive

#: Called as ``listener(agent, now)`` after an agent's entry changed or went stale.
Listener = Callable[[str, float], None]


class Source(enum.Enum):
    """Where a distance came from."""

    HINT = "hint"  # one agent's explicit client hint (request metadata, trace hint)
    TABLE = "table"  # a whole-table push from the client
    ESTIMATE = "estimate"  # computed by an estimator from world state


class Knowledge(enum.Enum):
    """What the table knows about an agent at a given instant."""

    KNOWN = "known"  # a fresh finite distance
    NO_CALL = "no_call"  # fresh, and no call is expected
    STALE = "stale"  # an entry exists but is older than the horizon
    UNKNOWN = "unknown"  # no entry


class DistanceEntry(NamedTuple):
    """One stored record; ``eta`` is None when no call is expected."""

    eta: float | None
    set_at: float
    expires_at: float  # min(set_at + horizon, eta + overdue_grace); inf without either
    version: int  # the table version current when it was set
    source: Source


class DistanceLookup(NamedTuple):
    """An agent's distance as seen at one instant (``distance`` >= 0 when KNOWN)."""

    knowledge: Knowledge
    eta: float | None
    distance: float | None
    entry: DistanceEntry | None


class DistanceTable:
    """Per-agent predicted next-call times, updated incrementally and read in O(1).

    Args:
        horizon: how long an entry stays fresh, in the caller's time unit; None keeps
            entries fresh forever.
        overdue_grace: how long a predicted call may be late before the prediction
            reads as stale, in the same unit; None keeps overdue predictions (they then
            rank as nearest of all until refreshed).
    """

    def __init__(self, *, horizon: float | None = None, overdue_grace: float | None = None) -> None:
        self._horizon = None if horizon is None else check_positive(horizon, what="horizon")
        self._overdue_grace = (
            None if overdue_grace is None else check_positive(overdue_grace, what="overdue_grace")
        )
        self._entries: dict[str, DistanceEntry] = {}
        self._expiry: list[tuple[float, str]] = []  # (expires_at, agent), lazily pruned
        self._listeners: list[Listener] = []
        self._version = 0

    @property
    def horizon(self) -> float | None:
        return self._horizon

    @property
    def overdue_grace(self) -> float | None:
        return self._overdue_grace

    @property
    def version(self) -> int:
        """The version of the last accepted :meth:`replace` (0 before any)."""
        return self._version

    def __len__(self) -> int:
        return len(self._entries)

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` for every agent whose entry changes or goes stale."""
        self._listeners.append(listener)

    def update(
        self, agent: str, distance: float | None, *, now: float, source: Source = Source.HINT
    ) -> bool:
        """Set one agent's distance (None: no call expected); True if it was applied.

        An update older than the stored entry is ignored (returns False).
        """
        return self.update_batch({agent: distance}, now=now, source=source) == 1

    def update_batch(
        self,
        distances: Mapping[str, float | None],
        *,
        now: float,
        source: Source = Source.HINT,
    ) -> int:
        """Set several agents' distances; returns how many were applied.

        Raises:
            InvalidEntryError: any id, distance or ``now`` is invalid; nothing is changed.
        """
        checked_now, checked = _check_batch(distances, now)
        applied = [
            agent
            for agent in sorted(checked)
            if _is_fresher(self._entries.get(agent), checked_now, source)
        ]
        for agent in applied:
            self._store(agent, checked[agent], now=checked_now, source=source)
        self._notify(applied, checked_now)
        return len(applied)

    def replace(self, distances: Mapping[str, float | None], *, version: int, now: float) -> bool:
        """Replace the whole table with ``distances`` if ``version`` is newer.

        Agents absent from ``distances`` are forgotten unless their entry is fresher
        than ``now``; so are entries fresher than ``now`` kept for listed agents.
        Returns False (and changes nothing) for a version <= the current one.
        """
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidEntryError(f"table version {version!r} is not an int >= 0")
        checked_now, checked = _check_batch(distances, now)
        if version <= self._version:
            return False
        self._version = version
        changed = []
        for agent in sorted(self._entries.keys() | checked.keys()):
            if not _is_fresher(self._entries.get(agent), checked_now, Source.TABLE):
                continue
            changed.append(agent)
            if agent in checked:
                self._store(agent, checked[agent], now=checked_now, source=Source.TABLE)
            else:
                del self._entries[agent]
        self._notify(changed, checked_now)
        return True

    def forget(self, agents: Iterable[str], *, now: float) -> int:
        """Withdraw the entries of ``agents`` (they rank as unknown); returns how many existed."""
        dropped = sorted({agent for agent in agents if agent in self._entries})
        for agent in dropped:
            del self._entries[agent]
        self._notify(dropped, now)
        return len(dropped)

    def agents(self) -> Iterable[str]:
        """Every agent with an entry (fresh or stale), in no particular order."""
        return self._entries.keys()

    def advance(self, now: float) -> tuple[str, ...]:
        """Report (and notify listeners of) agents whose entries went stale by ``now``.

        Lookups are correct without calling this; it exists so that incremental
        indexes can re-rank the state of agents that silently decayed. Amortized
        O(log n) per expired entry.
        """
        expired: set[str] = set()
        while self._expiry and self._expiry[0][0] < now:
            expires_at, agent = heapq.heappop(self._expiry)
            entry = self._entries.get(agent)
            if entry is not None and entry.expires_at == expires_at:
                expired.add(agent)
        ordered = tuple(sorted(expired))
        self._notify(ordered, now)
        return ordered

    def lookup(self, agent: str, *, now: float) -> DistanceLookup:
        """The agent's distance at ``now``; never raises for an unknown agent."""
        entry = self._entries.get(agent)
        if entry is None:
            return DistanceLookup(Knowledge.UNKNOWN, None, None, None)
        if now > entry.expires_at:
            return DistanceLookup(Knowledge.STALE, None, None, entry)
        if entry.eta is None:
            return DistanceLookup(Knowledge.NO_CALL, None, None, entry)
        return DistanceLookup(Knowledge.KNOWN, entry.eta, max(0.0, entry.eta - now), entry)

    def owner_rank(self, agent: str, *, now: float) -> OwnerRank:
        """How near ``agent``'s next call is at ``now`` (higher: nearer). O(1)."""
        entry = self._entries.get(agent)
        if entry is None or entry.eta is None or now > entry.expires_at:
            return UNKNOWN_RANK
        return OwnerRank(KNOWN, -entry.eta)

    def rank_key(
        self, owners: Iterable[str], last_use: float, *, now: float, tiebreak: str = ""
    ) -> RankKey:
        """The eviction rank of state owned by ``owners`` (lower: evict sooner). O(owners).

        A shared resource ranks by its nearest owner; no owner ranks as unknown.
        ``last_use`` is in the caller's time unit; ``tiebreak`` should be the resource key.
        """
        best = max((self.owner_rank(agent, now=now) for agent in owners), default=UNKNOWN_RANK)
        return RankKey(best.known, best.neg_eta, last_use, tiebreak)

    def _store(self, agent: str, distance: float | None, *, now: float, source: Source) -> None:
        expires_at = math.inf if self._horizon is None else now + self._horizon
        eta = None if distance is None else now + distance
        if eta is not None and self._overdue_grace is not None:
            expires_at = min(expires_at, eta + self._overdue_grace)
        self._entries[agent] = DistanceEntry(eta, now, expires_at, self._version, source)
        if expires_at != math.inf:
            heapq.heappush(self._expiry, (expires_at, agent))
            if len(self._expiry) > 2 * len(self._entries) + 64:
                self._expiry = [(entry.expires_at, key) for key, entry in self._entries.items()]
                heapq.heapify(self._expiry)

    def _notify(self, agents: Iterable[str], now: float) -> None:
        for agent in agents:
            for listener in self._listeners:
                listener(agent, now)


def _check_batch(
    distances: Mapping[str, float | None], now: float
) -> tuple[float, dict[str, float | None]]:
    """Validate a whole batch before any of it is applied."""
    checked_now = check_finite(now, what="now")
    if not isinstance(distances, Mapping):
        raise InvalidEntryError(f"distances must be a mapping, not {type(distances).__name__}")
    checked = {check_id(agent): check_distance(agent, value) for agent, value in distances.items()}
    return checked_now, checked


def _is_fresher(old: DistanceEntry | None, now: float, source: Source) -> bool:
    """Newer wins; at equal time an estimate never overrides client information."""
    if old is None or now > old.set_at:
        return True
    if now < old.set_at:
        return False
    return source is not Source.ESTIMATE or old.source is Source.ESTIMATE
