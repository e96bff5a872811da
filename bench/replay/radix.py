"""The device tier: one real SGLang UnifiedRadixCache (Python tree core, CPU pools).

Who calls it: the replay engine, once per policy run. The KV pool holds one float per
token (1 layer, 1 head, head dim 1): only indices matter. The policy's strategy goes in
through SGLang's own factory table and ``eviction_policy_config`` keyword arguments,
registered only while the cache is built.

Invariants: a request's matched prefix is locked before anything is evicted for it,
and its whole path stays locked until :meth:`RadixTier.release`; values are inserted
with ``prev_prefix_len`` so SGLang frees nothing the tree already owns.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from sglang.srt.mem_cache.allocator import TokenToKVPoolAllocator
from sglang.srt.mem_cache.base_prefix_cache import EvictParams, InsertParams, MatchPrefixParams
from sglang.srt.mem_cache.cache_init_params import CacheInitParams
from sglang.srt.mem_cache.evict_policy import EvictionStrategy
from sglang.srt.mem_cache.memory_pool import MHATokenToKVPool, ReqToTokenPool
from sglang.srt.mem_cache.radix_cache import RadixKey
from sglang.srt.mem_cache.unified_cache.components.base import ComponentType
from sglang.srt.mem_cache.unified_radix_cache import UnifiedRadixCache
from sglang.srt.mem_cache.utils import _EVICTION_POLICY_FACTORIES
from sglang.srt.server_args import ServerArgs, set_global_server_args_for_scheduler

_POLICY_NAME = "scalesim-replay"

#: Called with (leaf node, replay-token end of the leaf, call index) after an insert.
PathHook = Callable[[Any, int, int], None]


@dataclass(frozen=True)
class Admission:
    """A request admitted to the device tier: its GPU hit and the lock to release."""

    gpu_hit: int
    lock: Any


@contextlib.contextmanager
def _registered(strategy: EvictionStrategy) -> Iterator[None]:
    """Expose ``strategy`` to SGLang's factory table while one cache is built."""
    _EVICTION_POLICY_FACTORIES[_POLICY_NAME] = lambda **kwargs: kwargs["strategy"]
    try:
        yield
    finally:
        del _EVICTION_POLICY_FACTORIES[_POLICY_NAME]


class RadixTier:
    """A UnifiedRadixCache of ``capacity_tokens`` tokens driven request by request."""

    def __init__(self, capacity_tokens: int, *, strategy: EvictionStrategy, on_path: PathHook):
        set_global_server_args_for_scheduler(ServerArgs(model_path="dummy", page_size=1))
        pool = MHATokenToKVPool(
            size=capacity_tokens,
            page_size=1,
            dtype=torch.float16,
            head_num=1,
            head_dim=1,
            layer_num=1,
            device="cpu",
            enable_memory_saver=False,
        )
        self.allocator = TokenToKVPoolAllocator(
            size=capacity_tokens, dtype=torch.float16, device="cpu", kvcache=pool, need_sort=False
        )
        params = CacheInitParams(
            req_to_token_pool=ReqToTokenPool(
                size=1, max_context_len=8, device="cpu", enable_memory_saver=False
            ),
            token_to_kv_pool_allocator=self.allocator,
            page_size=1,
            disable=False,
            tree_components=(ComponentType.FULL,),
            eviction_policy=_POLICY_NAME,
            eviction_policy_config={"strategy": strategy},
            tree_core_backend="python",
        )
        with _registered(strategy):
            self.cache = UnifiedRadixCache(params=params)
        self.on_path = on_path
        self.capacity_tokens = capacity_tokens

    def match(self, tokens: array) -> int:  # type: ignore[type-arg]
        """Tokens of ``tokens`` resident on the device (marks them used)."""
        return int(self._match(tokens).device_prefix_len)

    def _match(self, tokens: array) -> Any:  # type: ignore[type-arg]
        return self.cache.match_prefix(MatchPrefixParams(key=RadixKey(tokens)))

    def admit(self, tokens: array, call_index: int) -> Admission | None:  # type: ignore[type-arg]
        """Match, make room, insert and lock ``tokens``; None if they cannot fit now."""
        match = self._match(tokens)
        hit = int(match.device_prefix_len)
        need = len(tokens) - hit
        prefix_lock = self.cache.lock(match.last_device_node)
        free = self.allocator.available_size()
        if need > free + self.cache.evictable_size():
            self.cache.unlock(prefix_lock)
            return None
        if need > free:
            self.cache.evict(EvictParams(num_tokens=need - free))
        fresh = self.allocator.alloc(need)
        prefix = self.cache.path_device_indices(match.last_device_node)[:hit]
        value = torch.cat([prefix, fresh]) if hit else fresh
        result = self.cache.insert(
            InsertParams(key=RadixKey(tokens), value=value, prev_prefix_len=hit)
        )
        leaf = result.last_device_node
        lock = self.cache.lock(leaf)
        self.cache.unlock(prefix_lock)
        self.on_path(self.cache.resolve_node_handle(leaf), len(tokens), call_index)
        return Admission(hit, lock)

    def release(self, admission: Admission) -> None:
        """Unlock a request's path: it becomes evictable."""
        self.cache.unlock(admission.lock)
