"""Adapter prefetch: the adapters of agents due soon are copied into GPU slots before they call.

Who calls it: the AFTER hook on ``Scheduler._process_hicache_events`` (once per scheduler
iteration, at the top of ``get_next_batch_to_run``, where every tensor-parallel rank has the
same queues), after the KV prefetch. The decision is the runtime's
(:meth:`~scalesim.runtime.adapters.AdapterSlots.prefetch_plan`: free slots first, else only a
slot whose adapter's nearest owner calls strictly later); the copy is SGLang's own:
``LoRAOverlapLoader.try_overlap_load_lora`` (a side stream) with
``--enable-lora-overlap-loading``, else ``LoRAManager.fetch_new_loras`` (the path a batch's
forward takes, run ahead of the call). Either way SGLang's pool asks the ScaleSim policy for
the victim, and the adapters passed as in use (running batch, the batch just run, queued
requests, loads in flight) are never candidates.

Invariants: a prefetch never fails a request: a refusal or an error is counted
(``lora_prefetch_failures``) and dropped, and the request loads its adapter as stock SGLang
would. The base model's slot is never a prefetch victim. Nothing reads a wall clock.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

from sglang.srt.lora.mem_pool import EMPTY_SLOT

from scalesim.runtime import ScaleSimRuntime
from scalesim.runtime.adapters import SlotView
from scalesim.sglang.lora import ScaleSimLoRAPolicy, adapter_policy_of, lora_manager_of

logger = logging.getLogger(__name__)

#: Most adapters copied ahead of calls per scheduler iteration (each is one adapter's weights).
MAX_PREFETCH_PER_STEP = 2


def lora_prefetch_step(scheduler: Any, runtime: ScaleSimRuntime) -> int:
    """Load the adapters of the nearest due agents into free or farther slots; returns how
    many loads were started."""
    policy = adapter_policy_of(scheduler)
    if policy is None or policy.slots.runtime is not runtime:
        return 0
    due = runtime.due_owners()
    if not due:
        return 0
    manager = lora_manager_of(scheduler)
    in_use = _uids_in_use(scheduler, manager)
    view = _slot_view(policy, manager.memory_pool, in_use)
    started = 0
    for name in policy.slots.prefetch_plan(due, view, max_loads=MAX_PREFETCH_PER_STEP):
        uid = policy.uid_of(name)
        if uid is None:  # not loaded in host memory (unknown, or unloaded to disk)
            continue
        resident_in_use = {u for u in in_use if u in manager.memory_pool.uid_to_buffer_id}
        if _prefetch_one(scheduler, manager, policy, uid, resident_in_use):
            started += 1
            in_use.add(uid)  # a later prefetch of this step must not evict it
    return started


def _prefetch_one(
    scheduler: Any, manager: Any, policy: ScaleSimLoRAPolicy, uid: str, in_use: set[str | None]
) -> bool:
    """One adapter into a slot through SGLang's loader; a refusal or error is counted."""
    policy.prefetching = True
    try:
        if not manager.validate_lora_batch(in_use | {uid}):
            ok = False
        elif getattr(scheduler, "enable_lora_overlap_loading", False):
            scheduler.lora_overlap_loader.try_overlap_load_lora(uid, in_use)
            ok = uid in manager.memory_pool.uid_to_buffer_id
        else:
            manager.fetch_new_loras({uid}, in_use)
            ok = True
    except Exception:  # a prefetch must never fail a request or the scheduler loop
        logger.exception("scalesim adapter prefetch of %s failed; dropped", policy.name_of(uid))
        ok = False
    finally:
        policy.prefetching = False
    if not ok:
        policy.slots.counters.lora_prefetch_failures += 1
    return ok


def _slot_view(policy: ScaleSimLoRAPolicy, pool: Any, in_use: set[str | None]) -> SlotView:
    resident = [uid for uid in pool.buffer_id_to_uid if uid is not EMPTY_SLOT]
    pinned = {uid for uid in resident if uid is not None and policy.is_pinned(uid)}
    return SlotView(
        resident=frozenset(_names(policy, resident)),
        protected=frozenset(_names(policy, in_use | pinned)),
        free_slots=sum(1 for uid in pool.buffer_id_to_uid if uid is EMPTY_SLOT),
    )


def _names(policy: ScaleSimLoRAPolicy, uids: Iterable[str | None]) -> Iterator[str | None]:
    for uid in uids:
        yield None if uid is None else policy.name_of(uid)


def _uids_in_use(scheduler: Any, manager: Any) -> set[str | None]:
    """Adapters a batch runs or is about to run with, and loads in flight: never evicted."""
    reqs: list[Any] = list(getattr(scheduler, "waiting_queue", ()) or ())
    for name in ("running_batch", "last_batch", "cur_batch"):
        reqs += list(getattr(getattr(scheduler, name, None), "reqs", ()) or ())
    chunked = getattr(scheduler, "chunked_req", None)
    if chunked is not None:
        reqs.append(chunked)
    in_use: set[str | None] = {getattr(req, "lora_id", None) for req in reqs}
    in_use.update(getattr(manager, "pending_lora_load_events", {}).keys())
    return in_use
