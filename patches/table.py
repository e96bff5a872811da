"""ScaleSim's hook table: every change ScaleSim makes to SGLang, grouped by SGLang subsystem.

Each entry names the target symbol, the hook, its ``HookType`` and why ScaleSim needs it. The
plug-in registers the whole table through ``HookRegistry`` and verifies every target
(``scalesim.patches.registration``). Nothing outside this package changes SGLang's behaviour;
the CPU development layer (``scalesim.sglang.cpu_compat``) is the one labelled exception.
"""

from __future__ import annotations

from sglang.srt.plugins.hook_registry import HookType

from . import mem_cache, scheduler
from .spec import HookSpec, Subsystem

_TREE_CORE = "sglang.srt.mem_cache.unified_cache.unified_tree_core.UnifiedTreeCore"
_CACHE = "sglang.srt.mem_cache.unified_radix_cache.UnifiedRadixCache"
_SCHEDULER = "sglang.srt.managers.scheduler.Scheduler"

MEM_CACHE_HOOKS: tuple[HookSpec, ...] = (
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target="sglang.srt.mem_cache.utils.get_eviction_strategy",
        hook=mem_cache.build_eviction_strategy,
        hook_type=HookType.AROUND,
        why="--radix-eviction-policy scalesim builds ScaleSimStrategy (evict farthest agent)",
    ),
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target=f"{_TREE_CORE}._split_node",
        hook=mem_cache.after_split_node,
        hook_type=HookType.AFTER,
        why="a split-off parent keeps the owners of the prefix it holds",
    ),
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target=f"{_TREE_CORE}._unregister_node",
        hook=mem_cache.after_unregister_node,
        hook_type=HookType.AFTER,
        why="ownership records of nodes that left the tree are dropped (bounded memory)",
    ),
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target=f"{_CACHE}.checkpoint_into_tree",
        hook=mem_cache.after_checkpoint_into_tree,
        hook_type=HookType.AFTER,
        why="the path a request inserted belongs to its (namespace, agent)",
    ),
)

SCHEDULER_HOOKS: tuple[HookSpec, ...] = (
    HookSpec(
        subsystem=Subsystem.SCHEDULER,
        target=f"{_SCHEDULER}._create_generation_req",
        hook=scheduler.after_create_generation_req,
        hook_type=HookType.AFTER,
        why="a request's agent, clock and next_call reach the runtime, in request order",
    ),
    HookSpec(
        subsystem=Subsystem.SCHEDULER,
        target=f"{_SCHEDULER}._process_hicache_events",
        hook=scheduler.after_process_hicache_events,
        hook_type=HookType.AFTER,
        why="host-tier prefixes of the nearest agents are queued for load-back (prefetch)",
    ),
)

#: The whole table, in registration order.
HOOKS: tuple[HookSpec, ...] = (*MEM_CACHE_HOOKS, *SCHEDULER_HOOKS)

#: The hooks that keep tree ownership in step; the trace replay installs these alone.
TREE_HOOKS: tuple[HookSpec, ...] = MEM_CACHE_HOOKS[1:3]


def register_extras() -> None:
    """Non-hook registrations through SGLang's own extension points (CLI choice lists)."""
    mem_cache.add_policy_choice()
