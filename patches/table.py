"""ScaleSim's hook table: every change ScaleSim makes to SGLang, grouped by SGLang subsystem.

Each entry names the target symbol, the hook, its ``HookType`` and why ScaleSim needs it. The
plug-in registers the whole table through ``HookRegistry`` and verifies every target
(``scalesim.patches.registration``). Nothing outside this package changes SGLang's behaviour;
the CPU development layer (``scalesim.sglang.cpu_compat``) is the one labelled exception.
"""

from __future__ import annotations

from sglang.srt.plugins.hook_registry import HookType

from . import mem_cache
from .spec import HookSpec, Subsystem

MEM_CACHE_HOOKS: tuple[HookSpec, ...] = (
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target="sglang.srt.mem_cache.utils.get_eviction_strategy",
        hook=mem_cache.build_eviction_strategy,
        hook_type=HookType.AROUND,
        why="--radix-eviction-policy scalesim builds ScaleSimStrategy (evict farthest agent)",
    ),
)

#: The whole table, in registration order.
HOOKS: tuple[HookSpec, ...] = (*MEM_CACHE_HOOKS,)


def register_extras() -> None:
    """Non-hook registrations through SGLang's own extension points (CLI choice lists)."""
    mem_cache.add_policy_choice()
