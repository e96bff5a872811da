"""ScaleSim's LoRA slot policy for SGLang: the adapter of the agent that calls latest goes first.

Who calls it: SGLang's ``LoRAMemoryPool`` builds its policy through
``sglang.srt.lora.eviction_policy.get_eviction_policy(name)``; the AROUND hook in
``scalesim.patches.lora`` answers ``scalesim`` with :class:`ScaleSimLoRAPolicy`, which owns the
scheduler process's :class:`~scalesim.runtime.adapters.AdapterSlots`. The pool lives in the
scheduler process (tp worker -> model runner -> LoRA manager), so the scheduler hooks bind the
policy to the runtime of the radix strategy (:func:`adapter_policy_of`) on first use and record
which adapter each agent calls with (:func:`observe_adapter`).

Invariants: SGLang names adapters by uid; ScaleSim's registry by adapter name (what requests
and the config use): the uid -> name map is the LoRA manager's own ``lora_refs``. Without the
radix ``scalesim`` strategy (no runtime) every adapter ranks as unknown: exactly LRU on a
logical counter. ``select_victim`` never raises into SGLang: on an internal error it logs once
and answers with SGLang's LRU, which tracks the same uses alongside.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping
from typing import Any

from sglang.srt.lora.eviction_policy import EvictionPolicy, LRUEvictionPolicy

from scalesim.config import ConfigError, ScaleSimConfig
from scalesim.runtime.adapters import AdapterSlots
from scalesim.sglang.eviction import runtime_of

logger = logging.getLogger(__name__)

#: The value of ``--lora-eviction-policy`` that selects ScaleSim's slot order.
POLICY_NAME = "scalesim"


class ScaleSimLoRAPolicy(EvictionPolicy):
    """Evicts the adapter whose nearest owner agent calls latest; LRU among equals."""

    def __init__(self, slots: AdapterSlots | None = None) -> None:
        self.slots = slots if slots is not None else AdapterSlots()
        self.fallback = LRUEvictionPolicy()  # SGLang's answer if ScaleSim's part fails
        self.prefetching = False  # set by the prefetcher while it loads ahead of a call
        self.bound = False
        self._refs: Mapping[str, Any] = {}
        self._failed = False

    @classmethod
    def from_env(cls) -> ScaleSimLoRAPolicy:
        """A policy with the adapters ``scalesim serve``'s config declares (``adapters``)."""
        slots = AdapterSlots()
        try:
            config = ScaleSimConfig.from_env(os.environ)
        except ConfigError:  # scalesim serve validated it; a hand-set variable may not be
            logger.exception("scalesim: SCALESIM_CONFIG unreadable; no adapters declared")
            config = None
        for namespace, agents in sorted((config.adapters if config else {}).items()):
            slots.declare(namespace, agents)
        return cls(slots)

    def bind(self, runtime: Any, lora_refs: Mapping[str, Any]) -> None:
        """Rank by ``runtime`` (None: LRU) and name adapters by the LoRA manager's refs."""
        self.slots.runtime = runtime
        self._refs = lora_refs
        self.bound = True
        if runtime is None:
            logger.warning(
                "scalesim LoRA policy without --radix-eviction-policy scalesim: adapters are "
                "evicted by LRU (no distances) and not prefetched"
            )

    def name_of(self, uid: str) -> str:
        """The adapter name of a uid (the uid itself if SGLang does not know it)."""
        name = getattr(self._refs.get(uid), "lora_name", None)
        return name if isinstance(name, str) else uid

    def uid_of(self, name: str) -> str | None:
        """The uid SGLang gives the adapter ``name``, if it is loaded in host memory."""
        for uid, ref in self._refs.items():
            if getattr(ref, "lora_name", None) == name:
                return uid
        return None

    def is_pinned(self, uid: str) -> bool:
        """True if SGLang pins the adapter (it never leaves its slot)."""
        return bool(getattr(self._refs.get(uid), "pinned", False))

    def mark_used(self, uid: str | None) -> None:
        self.fallback.mark_used(uid)
        if uid is not None:
            self.slots.touch(self.name_of(uid))

    def select_victim(self, candidates: set[str | None]) -> str | None:
        try:
            return self._victim(candidates)
        except Exception:  # a victim must never fail a batch
            if not self._failed:
                self._failed = True
                logger.exception("scalesim LoRA victim choice failed; falling back to LRU")
            return self.fallback.select_victim(candidates)

    def remove(self, uid: str | None) -> None:
        self.fallback.remove(uid)
        if uid is not None:
            self.slots.forget_use(self.name_of(uid))

    def count_load(self) -> None:
        """One adapter was copied into a slot: a prefetch when the prefetcher asked for it."""
        counters = self.slots.counters
        if self.prefetching:
            counters.lora_loads_prefetch += 1
        else:
            counters.lora_loads_blocking += 1

    def _victim(self, candidates: Collection[str | None]) -> str | None:
        named = {self.name_of(uid): uid for uid in candidates if uid is not None}
        if not named:
            return self.slots.victim(candidates)
        victim = self.slots.victim(named.keys())
        assert victim is not None
        return named[victim]


def lora_manager_of(scheduler: Any) -> Any:
    """The scheduler's LoRA manager (None without ``--enable-lora``)."""
    model_runner = getattr(getattr(scheduler, "tp_worker", None), "model_runner", None)
    return getattr(model_runner, "lora_manager", None)


def adapter_policy_of(scheduler: Any) -> ScaleSimLoRAPolicy | None:
    """The scheduler's ScaleSim LoRA policy, bound to the radix strategy's runtime on first
    use; None when the server runs another LoRA policy or no adapters."""
    manager = lora_manager_of(scheduler)
    policy = getattr(getattr(manager, "memory_pool", None), "eviction_policy", None)
    if not isinstance(policy, ScaleSimLoRAPolicy):
        return None
    if not policy.bound:
        policy.bind(runtime_of(getattr(scheduler, "tree_cache", None)), manager.lora_refs)
    return policy


def observe_adapter(scheduler: Any, req: Any) -> None:
    """A request of a known agent names an adapter: the agent now uses it."""
    owner: str | None = getattr(req, "scalesim_owner", None)
    uid: str | None = getattr(req, "lora_id", None)
    if owner is None or uid is None:
        return
    policy = adapter_policy_of(scheduler)
    if policy is not None:
        policy.slots.assign(owner, policy.name_of(uid))
