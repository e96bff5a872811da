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


def main() -> None:
    if cpu_compat.needed():
        cpu_compat.apply()  # before SGLang builds any host pool
    print(json.dumps(host_orders()))


if __name__ == "__main__":
    main()
