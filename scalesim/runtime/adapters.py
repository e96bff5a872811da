"""Adapter slots by invocation distance: which agents use which adapter, and the slot decisions.

Who calls it: in the server, SGLang's ``scalesim`` LoRA eviction policy
(``scalesim.sglang.lora``) owns one :class:`AdapterSlots` per scheduler process, bound to the
same :class:`~scalesim.runtime.ScaleSimRuntime` as the radix strategy; the request hook records
which adapter each agent called with, ``scalesim serve``'s config declares adapters up front,
and the scheduler hook asks for the adapters to prefetch. Pure Python: adapters are plain names.

Invariants:
- An adapter ranks by its nearest owner (``runtime.rank_key`` over the agents that use it), then
  by least recent use on a logical counter (never a wall clock), then by name: identical inputs
  give identical victims on every tensor-parallel rank.
- An agent uses one adapter at a time (its latest, or the declared one until it calls).
- The base model (``None``) is a victim only when it is the only candidate (as SGLang's LRU),
  and a prefetch never evicts it, an adapter of the running batch, or one of a nearer agent.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from scalesim.distance import UNKNOWN, RankKey
from scalesim.distance.rank import strictly_farther

from .contract import owner_key
from .runtime import ScaleSimRuntime


@dataclass
class AdapterCounters:
    """Adapter loads since start (api.md section 4: ``scalesim_lora_*`` without the prefix)."""

    lora_loads_blocking: int = 0  # loaded because a batch needed it now
    lora_loads_prefetch: int = 0  # loaded ahead of its agent's call
    lora_prefetch_failures: int = 0  # a prefetch SGLang refused or that raised: dropped


@dataclass(frozen=True)
class SlotView:
    """The GPU slots as the prefetcher sees them: who is resident, what must stay, how many free.

    ``protected`` holds the adapters of the running batch, of queued requests and of loads in
    flight; ``None`` (the base model) is never evicted by a prefetch whatever the view says.
    """

    resident: frozenset[str | None]
    protected: frozenset[str | None]
    free_slots: int


class AdapterSlots:
    """The agent -> adapter registry and the distance ranking of adapter slots."""

    def __init__(self, runtime: ScaleSimRuntime | None = None) -> None:
        self.runtime = runtime
        self.counters = AdapterCounters()
        self._adapter_of: dict[str, str] = {}  # owner key -> adapter name
        self._owners: dict[str, set[str]] = {}  # adapter name -> owner keys
        self._last_use: dict[str, int] = {}  # adapter name -> logical use tick
        self._tick = 0

    # ---- the registry -------------------------------------------------------------------
    def assign(self, owner: str, adapter: str | None) -> None:
        """``owner`` (a runtime owner key) now uses ``adapter`` (None: no adapter)."""
        previous = self._adapter_of.pop(owner, None)
        if previous is not None:
            users = self._owners.get(previous, set())
            users.discard(owner)
            if not users:
                self._owners.pop(previous, None)
        if adapter is not None:
            self._adapter_of[owner] = adapter
            self._owners.setdefault(adapter, set()).add(owner)

    def declare(self, namespace: str, adapters: Mapping[str, str | None]) -> None:
        """Declare agents' adapters up front (config or control API), before they call."""
        for agent in sorted(adapters):
            self.assign(owner_key(namespace, agent), adapters[agent])

    def adapter_of(self, owner: str) -> str | None:
        """The adapter ``owner`` uses, if known."""
        return self._adapter_of.get(owner)

    def owners_of(self, adapter: str) -> frozenset[str]:
        """The owner keys that use ``adapter``."""
        return frozenset(self._owners.get(adapter, ()))

    def drop_namespace(self, namespace: str) -> int:
        """Forget a finished simulation's agents (their adapters stay loaded); how many."""
        prefix = owner_key(namespace, "")
        owners = [owner for owner in self._adapter_of if owner.startswith(prefix)]
        for owner in owners:
            self.assign(owner, None)
        return len(owners)

    # ---- recency (SGLang's mark_used / remove) ------------------------------------------
    def touch(self, adapter: str) -> None:
        """``adapter`` is used by the batch being prepared (a logical tick, not a clock)."""
        self._tick += 1
        self._last_use[adapter] = self._tick

    def forget_use(self, adapter: str) -> None:
        """``adapter`` left its slot: its recency starts over when it is loaded again."""
        self._last_use.pop(adapter, None)

    # ---- decisions ----------------------------------------------------------------------
    def rank(self, adapter: str) -> RankKey:
        """Eviction rank of ``adapter``'s slot (lower: evict sooner)."""
        last_use = float(self._last_use.get(adapter, -1))
        if self.runtime is None:
            return RankKey(UNKNOWN, 0.0, last_use, adapter)
        return self.runtime.rank_key(self.owners_of(adapter), last_use, tiebreak=adapter)

    def victim(self, candidates: Collection[str | None]) -> str | None:
        """The slot to free among ``candidates``: the adapter whose nearest owner calls latest
        (LRU among equals); the base model only when nothing else is a candidate.

        Raises:
            ValueError: ``candidates`` is empty.
        """
        adapters = [uid for uid in candidates if uid is not None]
        if not adapters:
            if None in candidates:
                return None
            raise ValueError("no candidate adapter slot to evict")
        return min(adapters, key=self.rank)

    def host_victim(self, lru_first: Sequence[str]) -> str | None:
        """The adapter to unload from host memory (``--max-loaded-loras``) among ``lru_first``
        (SGLang's registry order, least recently used first): the one whose nearest owner calls
        latest, the least recently used among equals; None when there is no candidate.
        """
        if not lru_first:
            return None
        if self.runtime is None:
            return lru_first[0]
        runtime = self.runtime
        ranks = {
            name: runtime.rank_key(self.owners_of(name), float(position), tiebreak=name)
            for position, name in enumerate(lru_first)
        }
        return min(ranks, key=ranks.__getitem__)

    def prefetch_plan(
        self, due_owners: Sequence[str], view: SlotView, *, max_loads: int
    ) -> list[str]:
        """Adapters to load ahead of their agents' calls, nearest agent first.

        Each goes into a free slot, else into the slot of the lowest-ranked unprotected
        resident adapter, and only if that adapter's nearest owner calls strictly later.
        """
        plan: list[str] = []
        free = view.free_slots
        evictable = {uid for uid in view.resident if uid is not None and uid not in view.protected}
        for adapter in _unique(self._adapter_of.get(owner) for owner in due_owners):
            if len(plan) >= max_loads:
                break
            if adapter in view.resident or adapter in view.protected:
                continue
            if free > 0:
                free -= 1
                plan.append(adapter)
                continue
            if not evictable:
                break
            victim = min(evictable, key=self.rank)
            if not strictly_farther(self.rank(victim), self.rank(adapter)):
                continue  # the victim is as near as this adapter: keep it
            evictable.discard(victim)
            plan.append(adapter)
        return plan


def _unique(adapters: Iterable[str | None]) -> list[str]:
    seen: list[str] = []
    for adapter in adapters:
        if adapter is not None and adapter not in seen:
            seen.append(adapter)
    return seen
