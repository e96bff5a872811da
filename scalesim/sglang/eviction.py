"""ScaleSim's radix-tree eviction strategy for SGLang: farthest agent first, on both tiers.

Who calls it: SGLang's tree core (Python backend) calls ``get_priority(node)`` for every
evictable leaf, on the device tier and on HiCache's host tier, and pops the lowest first. The
strategy owns the scheduler process's :class:`~scalesim.runtime.ScaleSimRuntime`; every other
hook reaches the runtime through the cache (:func:`runtime_of`), never through a module global.

Invariants: every priority is a :class:`~scalesim.distance.RankKey` (one key type, so keys
from the fallback path stay comparable with normal ones); ``last_use`` is SGLang's logical
access counter, never a wall clock; ``get_priority`` never raises into SGLang: on an internal
error it logs once and returns the LRU-shaped key.
"""

from __future__ import annotations

import logging
from typing import Any

from sglang.srt.mem_cache.evict_policy import EvictionStrategy

from scalesim.distance import UNKNOWN, RankKey
from scalesim.runtime import RuntimeConfig, ScaleSimRuntime

logger = logging.getLogger(__name__)


class ScaleSimStrategy(EvictionStrategy):
    """Evicts the node whose nearest owner calls the LLM latest; LRU among unknowns."""

    def __init__(self, runtime: ScaleSimRuntime | None = None) -> None:
        self.runtime = runtime if runtime is not None else ScaleSimRuntime()
        self._failed = False

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> ScaleSimStrategy:
        """Built from ``--radix-eviction-policy-config`` JSON; unknown keys raise ConfigError."""
        return cls(ScaleSimRuntime(RuntimeConfig.from_mapping(config)))

    def get_priority(self, node: Any) -> RankKey:
        last_use = float(node.last_access_time)
        try:
            return self.runtime.node_rank(node, last_use)
        except Exception:  # a priority must never raise into the scheduler loop
            if not self._failed:
                self._failed = True
                logger.exception("scalesim eviction priority failed; falling back to LRU")
            return RankKey(UNKNOWN, 0.0, last_use, f"{node.id:012d}")


def runtime_of(tree_cache_or_core: Any) -> ScaleSimRuntime | None:
    """The runtime of a radix cache (or its tree core) run by ScaleSim's policy, else None."""
    core = getattr(tree_cache_or_core, "tree_core", tree_cache_or_core)
    strategy = getattr(core, "eviction_strategy", None)
    return strategy.runtime if isinstance(strategy, ScaleSimStrategy) else None
