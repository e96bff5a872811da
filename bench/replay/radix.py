"""The device tier: one real SGLang UnifiedRadixCache (Python tree core, CPU pools).

Who calls it: the replay engine, once per policy run. The KV pool holds one float per
token (1 layer, 1 head, head dim 1): only indices matter. The policy's strategy goes in
through SGLang's own factory table, registered only while the cache is built
(``strategy_registered``, the one sanctioned writer of that table). Before building a cache
it installs ScaleSim's ``TREE_HOOKS`` (idempotently), so node splits and removals reach the
runtime of a ``scalesim`` strategy exactly as in the live server.

Eviction runs in chunks: when a request needs room, the tree evicts what it lacks plus
``headroom_tokens``, as SGLang's scheduler evicts once per batch rather than once per
request. Each SGLang eviction ranks every evictable leaf (a heap built from scratch),
so evicting per request made the replay O(leaves) per call; the headroom (a small
fraction of the capacity, the same for every policy) amortises that.

Invariants: a request's matched prefix is locked before anything is evicted for it,
and its whole path stays locked until :meth:`RadixTier.release`; values are inserted
with ``prev_prefix_len`` so SGLang frees nothing the tree already owns.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from scalesim.patches.mem_cache import strategy_registered
from scalesim.patches.registration import register_and_verify
from scalesim.patches.table import TREE_HOOKS
from sglang.srt.mem_cache.allocator import TokenToKVPoolAllocator
from sglang.srt.mem_cache.base_prefix_cache import EvictParams, InsertParams, MatchPrefixParams
from sglang.srt.mem_cache.cache_init_params import CacheInitParams
from sglang.srt.mem_cache.evict_policy import EvictionStrategy
from sglang.srt.mem_cache.memory_pool import MHATokenToKVPool, ReqToTokenPool
from sglang.srt.mem_cache.radix_cache import RadixKey
from sglang.srt.mem_cache.unified_cache.components.base import ComponentType
from sglang.srt.mem_cache.unified_radix_cache import UnifiedRadixCache
from sglang.srt.server_args import ServerArgs, set_global_server_args_for_scheduler

from scalesim.sglang.tree import evictable_branches

_POLICY_NAME = "scalesim-replay"

#: Called with (leaf node, replay-token end of the leaf, call index) after an insert.
PathHook = Callable[[Any, int, int], None]


@dataclass(frozen=True)
class Admission:
    """A request admitted to the device tier: its GPU hit and the lock to release."""

    gpu_hit: int
    lock: Any


class RadixTier:
    """A UnifiedRadixCache of ``capacity_tokens`` tokens driven request by request."""

    def __init__(
        self,
        capacity_tokens: int,
        *,
        strategy: EvictionStrategy,
        on_path: PathHook,
        headroom_tokens: int = 0,
    ):
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
            tree_core_backend="python",
        )
        register_and_verify(TREE_HOOKS)
        with strategy_registered(_POLICY_NAME, strategy):
            self.cache = UnifiedRadixCache(params=params)
        self.on_path = on_path
        self.capacity_tokens = capacity_tokens
        self.headroom_tokens = headroom_tokens

    def free_tokens(self) -> int:
        """Unallocated device tokens."""
        return int(self.allocator.available_size())

    def evictable_branches(self) -> list[tuple[Any, int]]:
        """Each evictable device leaf with the ancestors evicting it frees (the live
        prefetcher's reading of the same tree: ``scalesim.sglang.tree``)."""
        return evictable_branches(self.cache.tree_core)

    def evict(self, n_tokens: int) -> None:
        """Evict at least ``n_tokens`` (if evictable) in the strategy's order."""
        self.cache.evict(EvictParams(num_tokens=n_tokens))

    def load(self, tokens: array, call_index: int) -> bool:  # type: ignore[type-arg]
        """Insert ``tokens`` into free room only (a prefetch); False if they do not fit."""
        admission = self.admit(tokens, call_index, may_evict=False)
        if admission is not None:
            self.release(admission)
        return admission is not None

    def resident(self, tokens: array) -> int:  # type: ignore[type-arg]
        """Leading tokens of ``tokens`` on the device, read without marking anything used
        (SGLang's read-only ``UnifiedTreeCore.match_full_device_prefix``)."""
        return int(self.cache.tree_core.match_full_device_prefix(RadixKey(tokens))[0])

    def _match(self, tokens: array) -> Any:  # type: ignore[type-arg]
        return self.cache.match_prefix(MatchPrefixParams(key=RadixKey(tokens)))

    def admit(
        self,
        tokens: array,  # type: ignore[type-arg]
        call_index: int,
        *,
        may_evict: bool = True,
    ) -> Admission | None:
        """Match, make room, insert and lock ``tokens``; None if they cannot fit now."""
        match = self._match(tokens)
        hit = int(match.device_prefix_len)
        need = len(tokens) - hit
        prefix_lock = self.cache.lock(match.last_device_node)
        free = self.allocator.available_size()
        if need > free + (self.cache.evictable_size() if may_evict else 0):
            self.cache.unlock(prefix_lock)
            return None
        if need > free:
            self.evict(need - free + self.headroom_tokens)
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
