"""Host-tier eviction orders of the ``scalesim`` policy, with SGLang's HiCache on CPU.

Run by ``test_tier_orders.py`` in a subprocess (``PYTHONPATH`` holding this folder): without
CUDA, HiCache needs ScaleSim's CPU compatibility layer, which rebinds torch globals and so may
only be applied in a process of its own. Prints one JSON object (the last line of stdout):
each order as a list of path labels, and the cache's state after the case. Asserts nothing
itself; the test asserts.
"""

from __future__ import annotations

import json
from typing import Any

from scalesim.sglang import cpu_compat


def host_orders() -> dict[str, Any]:
    """Agents a and b share the prefix [1, 2]; c is alone; u has no distance. Everything is
    backed up to the host, evicted from the device, then evicted from the host one node at a
    time, with a re-ranking update halfway."""
    from scalesim.patches.registration import register_and_verify
    from scalesim.patches.table import TREE_HOOKS
    from tier_harness import TierHarness

    register_and_verify(TREE_HOOKS)
    cache = TierHarness(hicache=True)
    cache.insert("a", "a", [1, 2, 3, 4])
    cache.insert("b", "b", [1, 2, 5, 6])
    cache.name("prefix", [1, 2])
    cache.insert("c", "c", [9, 10, 11, 12])
    cache.insert("u", "u", [13, 14, 15, 16])
    cache.update({"a": 2.0, "b": 9.0, "c": 5.0})
    cache.back_up_all()
    backed_up = sorted(cache.on_host())
    device = cache.drain_device()
    host_only = sorted(cache.on_host())
    host_before = cache.drain_host(steps=2)
    cache.update({"a": 21.0, "c": 11.0}, clock=1.0)  # a 20 ahead, c 10; b stays 8 ahead
    host_after = cache.drain_host()
    cache.cache.sanity_check()
    host_pool = cache.cache.cache_controller.mem_pool_host
    result = {
        "backed_up": backed_up,
        "device_order": device,
        "host_only": host_only,
        "host_order_before_update": host_before,
        "host_order_after_update": host_after,
        "host_free_tokens": int(host_pool.available_size()),
        "host_pool_tokens": int(host_pool.size),
        "owned_nodes_left": cache.runtime.owners.n_nodes,
    }
    cache.close()
    return result


def prefetch_admission(*, waiting_tokens: int, largest_tokens: int) -> dict[str, Any]:
    """Agent a (due next) has a 24-token prefix only on the host; far agent c holds 24 device
    tokens; 40 of the 64 device slots are free. One scheduler step of host prefetch runs with a
    waiting request of ``waiting_tokens`` (0: none) and the largest request seen so far
    ``largest_tokens``. A queued load-back keeps its path locked until a prefill batch starts
    the copy, so what it locks must leave the next request room, or nothing starts the copy:
    the live server stalled that way. Returns what was loaded and the room left."""
    from types import SimpleNamespace

    from scalesim.patches.registration import register_and_verify
    from scalesim.patches.table import TREE_HOOKS
    from sglang.srt.managers.schedule_batch import Req
    from sglang.srt.sampling.sampling_params import SamplingParams
    from tier_harness import TierHarness

    from scalesim.sglang.prefetch import LARGEST_REQUEST_ATTR, prefetch_step

    register_and_verify(TREE_HOOKS)
    cache = TierHarness(hicache=True)
    cache.insert("a", "a", list(range(100, 124)))
    cache.back_up_all()
    cache.drain_device()
    cache.insert("c", "c", list(range(200, 224)))
    cache.update({"a": 1.0, "c": 50.0})
    waiting = []
    if waiting_tokens:
        prompt = list(range(300, 300 + waiting_tokens - 1))
        waiting.append(Req("next", "", prompt, SamplingParams(max_new_tokens=1)))
    scheduler = SimpleNamespace(
        tree_cache=cache.cache,
        enable_hierarchical_cache=True,
        waiting_queue=waiting,
        **{LARGEST_REQUEST_ATTR: largest_tokens},
    )
    prefetch_step(scheduler, cache.runtime)
    room = int(cache.allocator.available_size()) + int(cache.cache.evictable_size())
    result = {
        "prefetched_tokens": cache.runtime.counters.kv_prefetch_tokens,
        "loads_queued": len(cache.cache.ongoing_load_back),
        "room_tokens": room,
    }
    cache.close()
    return result


def main() -> None:
    if cpu_compat.needed():
        cpu_compat.apply()  # before SGLang builds any host pool
    results = host_orders()
    results["prefetch_idle"] = prefetch_admission(waiting_tokens=0, largest_tokens=0)
    results["prefetch_waiting"] = prefetch_admission(waiting_tokens=48, largest_tokens=0)
    results["prefetch_largest"] = prefetch_admission(waiting_tokens=0, largest_tokens=48)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
