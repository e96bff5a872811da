"""Hooks on SGLang's memory cache: the ``scalesim`` radix eviction policy and the tree events
that keep the runtime's node ownership in step with the tree.

SGLang resolves ``--radix-eviction-policy NAME`` through
``sglang.srt.mem_cache.utils.get_eviction_strategy``; the AROUND hook answers the name
``scalesim`` with :class:`~scalesim.sglang.eviction.ScaleSimStrategy` (which owns the scheduler
process's runtime) and hands every other name to SGLang unchanged. The AFTER hooks on the tree
core and the cache return at once unless the tree runs ScaleSim's strategy; on an internal error
they log once and leave SGLang's result untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sglang.srt.arg_groups.choices import (
    RADIX_EVICTION_POLICY_CHOICES,
    add_radix_eviction_policy_choices,
)
from sglang.srt.mem_cache.evict_policy import EvictionStrategy
from sglang.srt.mem_cache.unified_cache.components.base import ComponentType
from sglang.srt.mem_cache.utils import _EVICTION_POLICY_FACTORIES

from scalesim.sglang.eviction import ScaleSimStrategy, runtime_of
from scalesim.sglang.guard import guarded
from scalesim.sglang.tree import path_tokens

#: The value of ``--radix-eviction-policy`` that selects ScaleSim's strategy.
POLICY_NAME = "scalesim"


def add_policy_choice() -> None:
    """Let SGLang's argument parser accept ``--radix-eviction-policy scalesim`` (idempotent)."""
    if POLICY_NAME not in RADIX_EVICTION_POLICY_CHOICES:
        add_radix_eviction_policy_choices([POLICY_NAME])


def build_eviction_strategy(
    original: Callable[..., Any], eviction_policy: str, config: dict[str, Any] | None = None
) -> Any:
    """AROUND ``get_eviction_strategy``: ScaleSim's strategy for its name, SGLang's otherwise.

    A bad config (unknown key, bad value) raises ConfigError at cache construction (server
    startup), as SGLang's own policies do.
    """
    if eviction_policy.lower() != POLICY_NAME:
        return original(eviction_policy, config)
    return ScaleSimStrategy.from_config(config)


@contextmanager
def strategy_registered(name: str, strategy: EvictionStrategy) -> Iterator[None]:
    """Expose a ready ``strategy`` under ``name`` in SGLang's factory table while a cache is
    built (the trace replay builds caches with strategies it made itself)."""
    _EVICTION_POLICY_FACTORIES[name] = lambda **_: strategy
    try:
        yield
    finally:
        del _EVICTION_POLICY_FACTORIES[name]


@guarded("split_node")
def after_split_node(result: Any, core: Any, key: Any, child: Any, split_len: int) -> None:
    """AFTER ``UnifiedTreeCore._split_node``: the new parent keeps the child's owners."""
    runtime = runtime_of(core)
    if runtime is not None:
        runtime.owners.on_split(result[0], child)


@guarded("unregister_node")
def after_unregister_node(result: Any, core: Any, node: Any) -> None:
    """AFTER ``UnifiedTreeCore._unregister_node``: forget a node that left the tree."""
    runtime = runtime_of(core)
    if runtime is not None:
        runtime.owners.forget(node)


@guarded("checkpoint_into_tree")
def after_checkpoint_into_tree(result: Any, cache: Any, req: Any, **kwargs: Any) -> None:
    """AFTER ``UnifiedRadixCache.checkpoint_into_tree``: the inserted path (ending at
    ``req.last_node``; its tokens lead ``Req.full_untruncated_fill_ids``) is the one the
    request's agent will reuse, up to what its next call is expected to repeat."""
    owner: str | None = getattr(req, "scalesim_owner", None)
    runtime = runtime_of(cache)
    if owner is None or runtime is None:
        return
    end = cache.resolve_node_handle(req.last_node)
    if end is not None and getattr(end, "parent", None) is not None:
        tokens = req.full_untruncated_fill_ids[: path_tokens(end)]
        runtime.record_path(end, owner, tokens=tokens, request=str(req.rid))


@guarded("evict")
def after_evict(result: Any, cache: Any, *args: Any, **kwargs: Any) -> None:
    """AFTER ``UnifiedRadixCache._evict``: count device tokens evicted under the policy."""
    runtime = runtime_of(cache)
    if runtime is not None:
        runtime.counters.evicted_device_tokens += int(result.num_tokens_evicted)


@guarded("evict_host")
def after_evict_host(
    result: int, cache: Any, num_tokens: int, component_type: Any = None, **kwargs: Any
) -> None:
    """AFTER ``UnifiedRadixCache.evict_host``: count host KV tokens evicted under the policy
    (the full-attention component; auxiliary components are not KV tokens)."""
    runtime = runtime_of(cache)
    if runtime is not None and component_type in (None, ComponentType.FULL):
        runtime.counters.evicted_host_tokens += int(result)
