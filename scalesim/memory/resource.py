"""The modular per-agent memory record: one piece of state the planner may move.

Who calls it: the SGLang adapter turns a radix-tree node (a KV prefix) or a LoRA slot
into a :class:`Resource`; benchmarks build them from traces. The record is
engine-agnostic: a key, the agents that own it, its size, where it lives now, when it
was last used, and whether it may move at all.

Invariants: records are immutable and validated on construction; ``owners`` is sorted
and duplicate-free, so equal inputs give equal records whatever the input order.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from scalesim.distance.validation import InvalidEntryError, check_finite, check_id


class Tier(enum.Enum):
    """Where a resource lives now."""

    DEVICE = "device"  # GPU memory: usable by a request without a transfer
    HOST = "host"  # pinned host memory: loadable back without recomputation
    NONE = "none"  # not resident: must be recomputed or reloaded from storage


@dataclass(frozen=True)
class Resource:
    """One movable piece of per-agent state.

    Attributes:
        key: unique id of the resource (e.g. a radix node id or an adapter name).
        owners: agents whose calls use it; a shared prompt prefix has many, and a
            resource with no owner ranks as unknown (by recency only).
        size_bytes: bytes it occupies in its tier.
        tier: where it lives now.
        last_use: when a request last used it, in the caller's time unit.
        locked: in use by a running request; never evicted.
        pinned: held resident by the operator; never evicted.
    """

    key: str
    owners: tuple[str, ...]
    size_bytes: int
    tier: Tier
    last_use: float
    locked: bool = False
    pinned: bool = False

    def __post_init__(self) -> None:
        check_id(self.key, what="resource key")
        if isinstance(self.owners, str):
            raise InvalidEntryError(f"owners of {self.key!r} must be a collection of ids")
        owners = tuple(sorted({check_id(owner) for owner in self.owners}))
        object.__setattr__(self, "owners", owners)
        size = self.size_bytes
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidEntryError(f"size_bytes of {self.key!r}: {size!r} is not an int >= 0")
        if not isinstance(self.tier, Tier):
            raise InvalidEntryError(f"tier of {self.key!r}: {self.tier!r} is not a Tier")
        object.__setattr__(
            self, "last_use", check_finite(self.last_use, what=f"last_use of {self.key!r}:")
        )

    @property
    def evictable(self) -> bool:
        """True if the planner may move it out of its tier."""
        return not (self.locked or self.pinned)
