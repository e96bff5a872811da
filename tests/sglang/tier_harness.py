"""SGLang's own unified-radix-cache test fixtures, built with the ``scalesim`` policy on CPU.

Who calls it: ``test_tier_orders.py`` (device tier and the kit configs, in the pytest process)
and ``host_tier_orders.py`` (HiCache host tier, in a subprocess that, without CUDA, applied
ScaleSim's CPU compatibility layer first). Not a test module itself.

SGLang's kit (``sglang.test.kits.unified_radix_cache``) is reused, not copied: ``build_fixture``
builds the cache (Python tree core with SGLang's white-box inspector), the mixin's steps insert,
back up and set up HiCache. Two adaptations where CUDA is absent, both in :func:`kit_on_cpu`:
the kit asks ``get_device()`` for an accelerator (we answer ``"cpu"``), and its
``_init_hicache`` hard-codes the CUDA transfer kernel (we let it build ``ServerArgs`` with the
``direct`` IO backend and the ``layer_first`` host layout, which ScaleSim's CPU layer supports).
Where CUDA exists the kit runs unchanged (not tried: no GPU was available when this was
written).

Nodes are named by their full path (the tokens from the root to the node's end): that name is
stable across SGLang's node splits, so an eviction order reads as a list of path labels.
"""

from __future__ import annotations

import dataclasses
import unittest
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Any
from unittest import mock

import torch
from scalesim.patches.mem_cache import POLICY_NAME, strategy_registered
from sglang.srt.mem_cache.base_prefix_cache import EvictParams, InsertParams
from sglang.srt.mem_cache.radix_cache import RadixKey
from sglang.srt.mem_cache.unified_cache.components.base import ComponentType
from sglang.srt.server_args import ServerArgs
from sglang.test.kits.unified_radix_cache import fixtures as kit_fixtures
from sglang.test.kits.unified_radix_cache import mixins as kit_mixins
from sglang.test.kits.unified_radix_cache.config import CONFIGS, CacheConfig
from sglang.test.kits.unified_radix_cache.fixtures import (
    build_fixture,
    match_prefix,
    node_device_value,
    node_host_value,
    node_parent,
    node_token_ids,
)

from scalesim.runtime import DistanceUpdate, ScaleSimRuntime, owner_key
from scalesim.sglang.eviction import ScaleSimStrategy

#: Namespace of the hand-built cases unless a case names another.
NAMESPACE = "sim"
FULL = ComponentType.FULL


class _Tier(Enum):
    DEVICE = "device"
    HOST = "host"


def small_config(**changes: Any) -> CacheConfig:
    """The kit's first config (FULL, page size 1) under ``scalesim``, with a small pool."""
    base = dict(kv_size=64, num_layers=2, head_num=1, head_dim=8, eviction_policy=POLICY_NAME)
    return dataclasses.replace(CONFIGS[0], **{**base, **changes})


def full_only_configs() -> list[CacheConfig]:
    """The kit's FULL-only configs (one per page size it tests), under ``scalesim``."""
    return [
        dataclasses.replace(cfg, eviction_policy=POLICY_NAME)
        for cfg in CONFIGS
        if cfg.components == (FULL,)
    ]


def full_only_config(page_size: int) -> CacheConfig:
    """The kit's FULL-only config of ``page_size``, under ``scalesim``."""
    (cfg,) = [cfg for cfg in full_only_configs() if cfg.page_size == page_size]
    return cfg


def _cpu_hicache_server_args(**kwargs: Any) -> ServerArgs:
    return ServerArgs(
        **{**kwargs, "hicache_io_backend": "direct", "hicache_mem_layout": "layer_first"}
    )


@contextmanager
def kit_on_cpu() -> Iterator[None]:
    """Let SGLang's kit build its fixtures on CPU (see the module docstring); where CUDA
    exists the kit runs unchanged."""
    if torch.cuda.is_available():
        yield
        return
    with (
        mock.patch.object(kit_fixtures, "get_device", return_value="cpu"),
        mock.patch.object(kit_mixins, "ServerArgs", _cpu_hicache_server_args),
    ):
        yield


class _KitSteps(kit_mixins.UnifiedRadixCacheFixtures, unittest.TestCase):
    """The kit's test steps (a unittest mixin), used outside a unittest run."""

    def __init__(self, cfg: CacheConfig) -> None:
        super().__init__()  # methodName "runTest": unittest allows it to be absent
        self.cfg = cfg


class TierHarness:
    """One kit-built UnifiedRadixCache whose ``scalesim`` strategy owns :attr:`runtime`."""

    def __init__(self, cfg: CacheConfig | None = None, *, hicache: bool = False) -> None:
        self.cfg = cfg if cfg is not None else small_config()
        self.runtime = ScaleSimRuntime()
        self.kit = _KitSteps(self.cfg)
        with kit_on_cpu(), strategy_registered(POLICY_NAME, ScaleSimStrategy(self.runtime)):
            self.cache, self.allocator, self.req_to_token_pool = build_fixture(self.cfg)
            if hicache:
                self.kit._init_hicache(self.cache)
        self._labels: dict[tuple[int, ...], str] = {}
        self._versions: dict[str, int] = {}
        self.evicted_tokens = 0

    def close(self) -> None:
        """Run the kit's cleanups (HiCache host resources)."""
        self.kit.doCleanups()

    # ---- driving the cache ------------------------------------------------------------
    def name(self, label: str, tokens: Sequence[int]) -> None:
        """Call the node whose full path is ``tokens`` ``label`` in eviction orders."""
        self._labels[tuple(tokens)] = label

    def insert(
        self, label: str, agent: str, tokens: Sequence[int], *, namespace: str = NAMESPACE
    ) -> None:
        """Insert ``tokens`` with the kit's step; ``agent`` owns the path, as after a request."""
        result = self.kit._insert(self.cache, self.allocator, self.req_to_token_pool, tokens)
        end = self.cache.resolve_node_handle(result.last_device_node)
        self.runtime.owners.record_path(end, owner_key(namespace, agent))
        self.name(label, tokens)

    def serve(self, agent: str, tokens: Sequence[int], *, namespace: str = NAMESPACE) -> int:
        """One request as SGLang's scheduler runs it: match and lock the cached prefix, evict
        what the rest lacks, insert (the prefix's slots passed back as ``prev_prefix_len``),
        lock the new path, record its owner, release. Returns the device hit in tokens.
        """
        match = match_prefix(self.cache, list(tokens))
        hit = int(match.device_prefix_len)
        prefix_lock = self.cache.lock(match.last_device_node)
        need = len(tokens) - hit
        free = int(self.allocator.available_size())
        if need > free:
            self.evict_tokens(need - free)
        fresh = self.allocator.alloc(need)
        assert fresh is not None, f"no room for {need} tokens after eviction"
        prefix = self.cache.path_device_indices(match.last_device_node)[:hit]
        result = self.cache.insert(
            InsertParams(
                key=RadixKey(array("q", tokens)),
                value=torch.cat([prefix, fresh]),
                prev_prefix_len=hit,
            )
        )
        path_lock = self.cache.lock(result.last_device_node)
        self.cache.unlock(prefix_lock)
        end = self.cache.resolve_node_handle(result.last_device_node)
        self.runtime.owners.record_path(end, owner_key(namespace, agent))
        self.cache.unlock(path_lock)
        return hit

    def unaccounted_tokens(self) -> int:
        """Device slots neither free nor held by the tree: 0 when no request is in flight,
        above 0 for a leak, below 0 for slots freed while the tree still holds them."""
        tree_tokens, _ = self.cache.total_size()
        return int(self.cfg.kv_size - self.allocator.available_size() - tree_tokens)

    def touch(self, tokens: Sequence[int]) -> int:
        """Match ``tokens`` (marks them used; splits a node the match ends inside)."""
        return int(match_prefix(self.cache, list(tokens)).device_prefix_len)

    def update(
        self,
        next_call: dict[str, float | None],
        *,
        clock: float = 0.0,
        namespace: str = NAMESPACE,
    ) -> None:
        """A control update for ``namespace`` (absolute next-call times), next version."""
        version = self._versions.get(namespace, 0) + 1
        self._versions[namespace] = version
        self.runtime.apply(DistanceUpdate(namespace, clock, version, next_call))

    def back_up_all(self) -> None:
        """Back every node up to the host (the kit's parent-first backup)."""
        self.kit._backup_tree(self.cache)

    def priority(self, tokens: Sequence[int]) -> Any:
        """The strategy's priority of the node whose full path is ``tokens``."""
        node_id = self._node_ids()[tuple(tokens)]
        node = self.cache.resolve_node_handle(node_id)
        return self.cache.tree_core.eviction_strategy.get_priority(node)

    # ---- reading orders ---------------------------------------------------------------
    def on_device(self) -> set[str]:
        """Labels of the nodes holding KV on the device (unnamed nodes by their token path)."""
        return self._resident(_Tier.DEVICE)

    def on_host(self) -> set[str]:
        """Labels of the nodes holding KV on the host."""
        return self._resident(_Tier.HOST)

    def evict_tokens(self, n_tokens: int) -> None:
        """Evict at least ``n_tokens`` device tokens in one call, as the scheduler does."""
        result = self.cache.evict(EvictParams(num_tokens=n_tokens))
        self.evicted_tokens += result.num_tokens_evicted

    def drain_device(self, *, steps: int | None = None) -> list[str]:
        """Evict device nodes one at a time (``steps`` of them, or until none is evictable);
        their labels in eviction order."""
        return self._drain(_Tier.DEVICE, steps)

    def drain_host(self, *, steps: int | None = None) -> list[str]:
        """Evict host nodes one at a time, as :meth:`drain_device` does on the device."""
        return self._drain(_Tier.HOST, steps)

    def _drain(self, tier: _Tier, steps: int | None) -> list[str]:
        order: list[str] = []
        while steps is None or len(order) < steps:
            before = self._resident(tier)
            if tier is _Tier.DEVICE:  # a one-token request evicts exactly one node
                self.cache.evict(EvictParams(num_tokens=1))
            else:
                self.cache.evict_host(1)
            gone = sorted(before - self._resident(tier))
            if not gone:
                break
            assert len(gone) == 1, f"a one-token eviction freed several nodes: {gone}"
            order.extend(gone)
        return order

    def _resident(self, tier: _Tier) -> set[str]:
        value_of = node_device_value if tier is _Tier.DEVICE else node_host_value
        return {
            self._labels.get(path, str(list(path)))
            for path, node_id in self._node_ids().items()
            if value_of(self.cache, node_id, FULL) is not None
        }

    def live_node_ids(self) -> set[int]:
        """Ids of every node in the tree but the root."""
        return set(self._node_ids().values())

    def _node_ids(self) -> dict[tuple[int, ...], int]:
        root = self.cache.root_node_handle()
        paths: dict[tuple[int, ...], int] = {}
        for node_id in self.cache.tree_core.get_all_node_ids():
            if node_id == root:
                continue
            tokens: list[int] = []
            cursor = node_id
            while cursor != root:
                tokens[:0] = node_token_ids(self.cache, cursor)
                cursor = node_parent(self.cache, cursor)
            paths[tuple(tokens)] = node_id
        return paths
