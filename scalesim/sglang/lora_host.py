"""The host tier of adapters (``--max-loaded-loras``): which adapter goes back to disk.

Who calls it: the AROUND hook on ``LoRARegistry.lru_lora_name`` (``scalesim.patches.lora``), in
the main process, where SGLang's tokenizer manager unloads adapters while more than
``--max-loaded-loras`` are loaded (after a load through ``/load_lora_adapter``, or the implicit
reload of an unloaded adapter a request names). SGLang unloads the least recently used; with
ScaleSim's LoRA policy the main process asks the scheduler, whose
:class:`~scalesim.runtime.adapters.AdapterSlots` ranks the candidates exactly as it ranks GPU
slots: the adapter whose nearest owner calls latest leaves first.

Invariants: the candidates are SGLang's own (unpinned ones when it asks so) in its LRU order,
less the most recent entry (the adapter just loaded or about to be used) and adapters with
requests in flight (unloading one waits for them). With fewer than two candidates left, without
the ``scalesim`` LoRA policy, or on any failure, SGLang's answer stands. The question only
reads scheduler state, so asking never changes a decision elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from scalesim.sglang.control import ask_schedulers
from scalesim.sglang.control_messages import ScaleSimHostAdapterVictimReqInput
from scalesim.sglang.lora import POLICY_NAME

logger = logging.getLogger(__name__)


async def lru_lora_name_by_distance(
    original: Callable[..., Awaitable[str | None]], registry: Any, exclude_pinned: bool = False
) -> str | None:
    """SGLang's LRU victim, replaced by the farthest agent's adapter under ScaleSim's policy."""
    lru_name = await original(registry, exclude_pinned=exclude_pinned)
    if lru_name is None or not scalesim_policy_selected():
        return lru_name
    try:
        candidates = host_candidates(registry, exclude_pinned=exclude_pinned)
        if len(candidates) < 2:
            return lru_name
        reply = await ask_schedulers(ScaleSimHostAdapterVictimReqInput(candidates=candidates))
        victim = reply.body.get("victim") if reply.status == 200 else None
    except Exception:  # unloading must go on: SGLang's choice is always a valid one
        logger.exception("scalesim host adapter ranking failed; SGLang's LRU choice stands")
        return lru_name
    return victim if isinstance(victim, str) and victim in candidates else lru_name


def scalesim_policy_selected() -> bool:
    """True when the server runs with ``--lora-eviction-policy scalesim``."""
    from sglang.srt.runtime_context import get_lora

    return bool(get_lora().lora_eviction_policy == POLICY_NAME)


def host_candidates(registry: Any, *, exclude_pinned: bool) -> list[str]:
    """Adapter names that may leave host memory, least recently used first."""
    adapters = list(registry.get_all_adapters().items())[:-1]  # the newest entry stays
    counters = getattr(registry, "_counters", {})  # lora_id -> requests in flight
    names: list[str] = []
    for name, ref in adapters:
        if exclude_pinned and ref.pinned:
            continue
        counter = counters.get(ref.lora_id)
        if counter is not None and counter.value() > 0:
            continue
        names.append(name)
    return names
