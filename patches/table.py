"""ScaleSim's hook table: every change ScaleSim makes to SGLang, grouped by SGLang subsystem.

Each entry names the target symbol, the hook, its ``HookType`` and why ScaleSim needs it. The
plug-in registers the whole table through ``HookRegistry`` and verifies every target
(``scalesim.patches.registration``). Nothing outside this package changes SGLang's behaviour;
the CPU development layer (``scalesim.sglang.cpu_compat``) is the one labelled exception.
"""

from __future__ import annotations

from sglang.srt.plugins.hook_registry import HookType

from . import control, copy_kernels, lora, mem_cache, scheduler
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
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target=f"{_CACHE}._evict",
        hook=mem_cache.after_evict,
        hook_type=HookType.AFTER,
        why="scalesim_evicted_tokens_total{tier=device} (api.md 4)",
    ),
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target=f"{_CACHE}.evict_host",
        hook=mem_cache.after_evict_host,
        hook_type=HookType.AFTER,
        why="scalesim_evicted_tokens_total{tier=host} (api.md 4)",
    ),
)

SCHEDULER_HOOKS: tuple[HookSpec, ...] = (
    HookSpec(
        subsystem=Subsystem.SCHEDULER,
        target=f"{_SCHEDULER}._create_generation_req",
        hook=scheduler.after_create_generation_req,
        hook_type=HookType.AFTER,
        why="a request's agent, clock, next_call and adapter reach the runtime, in order",
    ),
    HookSpec(
        subsystem=Subsystem.SCHEDULER,
        target=f"{_SCHEDULER}._process_hicache_events",
        hook=scheduler.after_process_hicache_events,
        hook_type=HookType.AFTER,
        why="each scheduler iteration: KV and adapter prefetch for the nearest agents; metrics",
    ),
    HookSpec(
        subsystem=Subsystem.SCHEDULER,
        target="sglang.srt.managers.schedule_policy.SchedulePolicy.calc_priority",
        hook=scheduler.after_calc_priority,
        hook_type=HookType.AFTER,
        why="queue_order=lag: the request lagging its simulation most is scheduled first",
    ),
)

#: LoRA adapter slots: ScaleSim's victim policy, the flag that selects it, load counts.
LORA_HOOKS: tuple[HookSpec, ...] = (
    HookSpec(
        subsystem=Subsystem.LORA,
        target="sglang.srt.lora.eviction_policy.get_eviction_policy",
        hook=lora.around_get_eviction_policy,
        hook_type=HookType.AROUND,
        why="--lora-eviction-policy scalesim builds ScaleSimLoRAPolicy (evict farthest agent's)",
    ),
    HookSpec(
        subsystem=Subsystem.LORA,
        target="sglang.srt.arg_groups.arg_utils.add_cli_args_from_dataclass",
        hook=lora.after_add_cli_args,
        hook_type=HookType.AFTER,
        why="--lora-eviction-policy lists its choices inline; scalesim is added to them",
    ),
    HookSpec(
        subsystem=Subsystem.LORA,
        target="sglang.srt.lora.mem_pool.LoRAMemoryPool.load_lora_weight_to_buffer",
        hook=lora.after_load_lora_weight_to_buffer,
        hook_type=HookType.AFTER,
        why="scalesim_lora_loads_total{kind=blocking|prefetch} (api.md 4)",
    ),
)

_HOST_POOL = "sglang.srt.mem_cache.pool_host.mha.MHATokenToKVPoolHost"

#: Live copies on ScaleSim's kernels (config ``copy_kernels: "triton"``; SGLang's path otherwise
#: and for every layout the kernels do not cover).
COPY_HOOKS: tuple[HookSpec, ...] = (
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target=f"{_HOST_POOL}.load_to_device_per_layer",
        hook=copy_kernels.around_load_to_device_per_layer,
        hook_type=HookType.AROUND,
        why="copy_kernels=triton: HiCache host->device KV loads run on scalesim.kernels",
    ),
    HookSpec(
        subsystem=Subsystem.MEM_CACHE,
        target=f"{_HOST_POOL}.backup_from_device_all_layer",
        hook=copy_kernels.around_backup_from_device_all_layer,
        hook_type=HookType.AROUND,
        why="copy_kernels=triton: HiCache device->host KV backups run on scalesim.kernels",
    ),
    HookSpec(
        subsystem=Subsystem.LORA,
        target="sglang.srt.lora.utils.copy_weight_into_buffer",
        hook=copy_kernels.around_copy_weight_into_buffer,
        hook_type=HookType.AROUND,
        why="copy_kernels=triton: LoRA slot loads run on scalesim.kernels",
    ),
)

_TOKENIZER_CONTROL = "sglang.srt.managers.tokenizer_control_mixin.TokenizerControlMixin"
_OPENAI = "sglang.srt.entrypoints.openai"

#: Control-plane hooks every process installs (the scheduler side of the control channel).
CONTROL_HOOKS: tuple[HookSpec, ...] = (
    HookSpec(
        subsystem=Subsystem.SCHEDULER,
        target=f"{_SCHEDULER}.init_request_dispatcher",
        hook=control.after_init_request_dispatcher,
        hook_type=HookType.AFTER,
        why="schedulers answer ScaleSim's control messages (distances, state, drop namespace)",
    ),
)

#: Hooks of the main (HTTP) process only: their targets live in modules that the scheduler,
#: detokenizer and data-parallel processes never import (the HTTP server, the tokenizer).
HTTP_HOOKS: tuple[HookSpec, ...] = (
    HookSpec(
        subsystem=Subsystem.HTTP,
        target=f"{_OPENAI}.serving_chat.OpenAIServingChat._validate_request",
        hook=control.around_validate_openai_request,
        hook_type=HookType.AROUND,
        why="malformed custom_params.scalesim on /v1/chat/completions is a 400 (api.md 1)",
    ),
    HookSpec(
        subsystem=Subsystem.HTTP,
        target=f"{_OPENAI}.serving_completions.OpenAIServingCompletion._validate_request",
        hook=control.around_validate_openai_request,
        hook_type=HookType.AROUND,
        why="malformed custom_params.scalesim on /v1/completions is a 400 (api.md 1)",
    ),
    HookSpec(
        subsystem=Subsystem.HTTP,
        target="sglang.srt.entrypoints.http_server.generate_contract_error",
        hook=control.around_generate_contract_error,
        hook_type=HookType.AROUND,
        why="malformed sampling_params.custom_params.scalesim on /generate is a 400 (api.md 1)",
    ),
    HookSpec(
        subsystem=Subsystem.HTTP,
        target="sglang.srt.managers.tokenizer_manager.TokenizerManager._validate_one_request",
        hook=control.before_validate_one_request,
        hook_type=HookType.BEFORE,
        why="no other route lets malformed metadata reach the scheduler (it cannot decode it)",
    ),
    HookSpec(
        subsystem=Subsystem.HTTP,
        target=f"{_TOKENIZER_CONTROL}.init_communicators",
        hook=control.after_init_communicators,
        hook_type=HookType.AFTER,
        why="control endpoints get the schedulers' replies (SGLang's FanOutCommunicator)",
    ),
    HookSpec(
        subsystem=Subsystem.HTTP,
        target=f"{_TOKENIZER_CONTROL}.update_control_communicator_fan_out",
        hook=control.after_update_control_communicator_fan_out,
        hook_type=HookType.AFTER,
        why="control calls wait for one reply per data-parallel worker, as SGLang's own do",
    ),
    HookSpec(
        subsystem=Subsystem.LORA,
        target="sglang.srt.lora.lora_registry.LoRARegistry.lru_lora_name",
        hook=lora.around_lru_lora_name,
        hook_type=HookType.AROUND,
        why="--max-loaded-loras unloads the farthest agent's adapter to disk, not the LRU one",
    ),
)

#: The whole table every process installs, in registration order.
HOOKS: tuple[HookSpec, ...] = (
    *MEM_CACHE_HOOKS,
    *SCHEDULER_HOOKS,
    *LORA_HOOKS,
    *COPY_HOOKS,
    *CONTROL_HOOKS,
)

#: The hooks that keep tree ownership in step; the trace replay installs these alone.
TREE_HOOKS: tuple[HookSpec, ...] = MEM_CACHE_HOOKS[1:3]


def register_extras() -> None:
    """Non-hook registrations through SGLang's own extension points (CLI choice lists, IPC
    message types); every process."""
    mem_cache.add_policy_choice()
    control.register_message_types()


def register_http_extras() -> None:
    """Registrations of the main (HTTP) process only: the control routes on SGLang's app."""
    control.add_routes()
