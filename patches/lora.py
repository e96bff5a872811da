"""Hooks on SGLang's LoRA subsystem: the ``scalesim`` adapter slot policy and its load counts.

SGLang builds a LoRA memory pool's victim policy through
``sglang.srt.lora.eviction_policy.get_eviction_policy(name)`` (imported by name into
``lora.mem_pool``, where ``HookRegistry`` rebinds it); the AROUND hook answers ``scalesim`` with
:class:`~scalesim.sglang.lora.ScaleSimLoRAPolicy` and every other name with SGLang's own. The
``--lora-eviction-policy`` flag lists its choices inline (rebuilt from the annotations each
time), so an AFTER hook on the argument builder adds ``scalesim`` to the parser's action.
In the main process, the LoRA registry's choice of the adapter to unload from host memory
(``--max-loaded-loras``) asks the scheduler's ranking too. Every hook falls back to SGLang's
behaviour on internal error.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sglang.srt.lora.eviction_policy import EvictionPolicy

from scalesim.sglang.guard import guarded
from scalesim.sglang.lora import POLICY_NAME, ScaleSimLoRAPolicy

logger = logging.getLogger(__name__)

_POLICY_DEST = "lora_eviction_policy"


def around_get_eviction_policy(original: Callable[..., Any], policy_name: str) -> EvictionPolicy:
    """AROUND ``get_eviction_policy``: ScaleSim's policy for its name; SGLang's LRU if building
    it fails (so the server still serves), SGLang's own policy for every other name."""
    if policy_name != POLICY_NAME:
        return original(policy_name)  # type: ignore[no-any-return]
    try:
        return ScaleSimLoRAPolicy.from_env()
    except Exception:
        logger.exception("scalesim LoRA policy could not be built; SGLang's LRU serves instead")
        return original("lru")  # type: ignore[no-any-return]


@guarded("add_cli_args")
def after_add_cli_args(result: Any, parser: Any, *args: Any, **kwargs: Any) -> None:
    """AFTER ``arg_utils.add_cli_args_from_dataclass`` (builds SGLang's parser from the
    argument dataclasses): ``--lora-eviction-policy`` accepts ``scalesim``."""
    for action in getattr(parser, "_actions", ()):
        choices = getattr(action, "choices", None)
        if action.dest == _POLICY_DEST and choices is not None and POLICY_NAME not in choices:
            action.choices = [*choices, POLICY_NAME]


@guarded("load_lora_weight_to_buffer")
def after_load_lora_weight_to_buffer(
    result: Any, pool: Any, uid: str | None, *args: Any, **kwargs: Any
) -> None:
    """AFTER ``LoRAMemoryPool.load_lora_weight_to_buffer``: count an adapter copied into a
    slot (blocking, or prefetch when ScaleSim's prefetcher asked); the base model's is not."""
    policy = getattr(pool, "eviction_policy", None)
    if uid is not None and isinstance(policy, ScaleSimLoRAPolicy):
        policy.count_load()


async def around_lru_lora_name(
    original: Callable[..., Awaitable[str | None]], registry: Any, exclude_pinned: bool = False
) -> str | None:
    """AROUND ``LoRARegistry.lru_lora_name`` (main process): with ``--lora-eviction-policy
    scalesim`` the adapter unloaded to disk is the farthest agent's, not the least recent."""
    from scalesim.sglang.lora_host import lru_lora_name_by_distance

    return await lru_lora_name_by_distance(original, registry, exclude_pinned)
