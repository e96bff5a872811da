"""ScaleSim's radix-tree eviction strategy for SGLang: farthest agent first.

Who calls it: SGLang's tree core (Python backend) calls ``get_priority(node)`` for
every evictable leaf, on the device tier and on the host tier, and pops the lowest
first. The runtime (server plug-in or the trace replay) records which agents' prompts
pass through each node (:class:`NodeOwners`) and owns the distance table and clock.

Invariants: every priority is a :class:`~scalesim.distance.RankKey` (one key type, so
keys from the fallback path stay comparable with normal ones); ``last_use`` is SGLang's
logical access counter, never a wall clock; ``get_priority`` never raises into SGLang:
on an internal error it logs once and returns the LRU-shaped key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sglang.srt.mem_cache.evict_policy import EvictionStrategy

from scalesim.distance import UNKNOWN, DistanceTable, RankKey

logger = logging.getLogger(__name__)


class NodeOwners:
    """Which agents' next calls will reuse each radix node, by node id.

    An agent owns the path of its latest prompt's reusable prefix only: when its prompt
    diverges (say its memory segment was rewritten), the old branch is dropped from its
    ownership, since its next call extends the new prompt, not the old one.
    A node split by SGLang (on insert, or on a match that ends mid-node) gets a fresh
    parent with no record; :meth:`of` then derives its owners from its children (the
    split-off child keeps the old node's id and record), so an ancestor always owns at
    least what its descendants own.
    """

    def __init__(self) -> None:
        self._owners: dict[int, set[str]] = {}
        self._latest: dict[str, Any] = {}  # agent -> end node of its reusable prefix

    def record_path(self, leaf: Any, agent: str) -> None:
        """Make ``leaf``'s path (up to the root) the one ``agent``'s next call reuses."""
        on_path: set[int] = set()
        child_owners: set[str] = set()
        node = leaf
        while node is not None and node.parent is not None:
            owners = self._owners.setdefault(node.id, set())
            owners |= child_owners
            owners.add(agent)
            child_owners = owners
            on_path.add(node.id)
            node = node.parent
        node, self._latest[agent] = self._latest.get(agent), leaf
        while node is not None and node.parent is not None and node.id not in on_path:
            self._owners.get(node.id, set()).discard(agent)
            node = node.parent

    def of(self, node: Any) -> Iterable[str]:
        """The owners of ``node``: recorded, else the union of its children's (memoised)."""
        owners = self._owners.get(node.id)
        if owners is not None:
            return owners
        derived: set[str] = set()
        for child in node.children.values():
            derived.update(self.of(child))
        if derived:
            self._owners[node.id] = derived
        return derived

    def forget(self, node_ids: Iterable[int]) -> None:
        """Drop the records of nodes that left the tree."""
        for node_id in node_ids:
            self._owners.pop(node_id, None)


def _no_clock() -> float:
    return 0.0


class ScaleSimStrategy(EvictionStrategy):
    """Evicts the node whose nearest owner calls the LLM latest; LRU among unknowns.

    Args:
        table: the distance table; a fresh one (no distances: pure LRU) if omitted.
        owners: node -> owner agents, filled by the runtime on insert.
        clock: the current time in the table's unit (steps or seconds), passed in by
            the runtime so that every tensor-parallel rank ranks alike.
        horizon: staleness horizon for a table built here (JSON config keyword).
        overdue_grace: how late a predicted call may be before it reads as stale, for a
            table built here (JSON config keyword).
    """

    def __init__(
        self,
        *,
        table: DistanceTable | None = None,
        owners: NodeOwners | None = None,
        clock: Callable[[], float] | None = None,
        horizon: float | None = None,
        overdue_grace: float | None = None,
    ) -> None:
        if table is None:
            table = DistanceTable(horizon=horizon, overdue_grace=overdue_grace)
        self.table = table
        self.owners = owners if owners is not None else NodeOwners()
        self.clock = clock if clock is not None else _no_clock
        self._failed = False

    def get_priority(self, node: Any) -> RankKey:
        tiebreak = f"{node.id:012d}"
        try:
            return self.table.rank_key(
                self.owners.of(node),
                float(node.last_access_time),
                now=self.clock(),
                tiebreak=tiebreak,
            )
        except Exception:  # a priority must never raise into the scheduler loop
            if not self._failed:
                self._failed = True
                logger.exception("scalesim eviction priority failed; falling back to LRU")
            return RankKey(UNKNOWN, 0.0, float(node.last_access_time), tiebreak)
