"""LoRA adapter slots on the GPU: which adapter a new load displaces.

Who calls it: the replay engine. SGLang holds ``--max-loras-per-batch`` adapters in GPU
slots; a call whose adapter is not resident must load it before it runs. Stock SGLang
picks the least recently used victim; ``scalesim`` and ``belady`` use their rankings.

Invariants: at most ``n_slots`` adapters resident; an adapter used by a running call is
never displaced. ScaleSim's adapter prefetch decides with the runtime's own
:class:`~scalesim.runtime.adapters.AdapterSlots` (the code the live server runs) over
:meth:`LoraSlots.view`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scalesim.runtime.adapters import SlotView

from .policies import Ranking


@dataclass
class _Slot:
    last_use: float
    owners: set[str] = field(default_factory=set)
    users: int = 0


class LoraSlots:
    """``n_slots`` GPU adapter slots (None: unbounded)."""

    def __init__(self, n_slots: int | None, *, ranking: Ranking) -> None:
        self.n_slots = n_slots
        self.ranking = ranking
        self._slots: dict[str, _Slot] = {}

    def resident(self, adapter: str) -> bool:
        return adapter in self._slots

    def can_load(self) -> bool:
        """True if an adapter can be loaded now (a free or displaceable slot exists)."""
        if self.n_slots is None or len(self._slots) < self.n_slots:
            return True
        return any(slot.users == 0 for slot in self._slots.values())

    def load(self, adapter: str, *, agent: str, now: float) -> None:
        """Make ``adapter`` resident, displacing the lowest-ranked idle adapter if full."""
        if adapter not in self._slots:
            if self.n_slots is not None and len(self._slots) >= self.n_slots:
                idle = [name for name, slot in self._slots.items() if slot.users == 0]
                victim = min(
                    idle,
                    key=lambda name: self.ranking.adapter_key(
                        name, self._slots[name].owners, self._slots[name].last_use
                    ),
                )
                del self._slots[victim]
            self._slots[adapter] = _Slot(now)
        self._slots[adapter].owners.add(agent)

    def acquire(self, adapter: str, *, now: float) -> None:
        """Pin a resident adapter for a running call."""
        slot = self._slots[adapter]
        slot.users += 1
        slot.last_use = now

    def release(self, adapter: str) -> None:
        self._slots[adapter].users -= 1

    def view(self) -> SlotView:
        """The slots as the runtime's adapter prefetch sees them (in-use adapters protected)."""
        free = len(self._slots) if self.n_slots is None else self.n_slots - len(self._slots)
        in_use = frozenset(name for name, slot in self._slots.items() if slot.users > 0)
        return SlotView(frozenset(self._slots), in_use, free_slots=max(0, free))
