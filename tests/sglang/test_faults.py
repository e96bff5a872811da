"""Faults on SGLang's real cache (CPU): ScaleSim never fails SGLang, and counts what it lost.

- A prefetch whose ``load_back`` raises, or returns False (device memory exhausted mid-prefetch),
  never raises out of the scheduler hook; the lost prefetch counts in
  ``runtime.counters.kv_prefetch_failures``. The fault is injected by wrapping the real cache
  object's ``load_back`` (a test double for the fault, not for the cache).
- An eviction priority that raises for some nodes only (a corrupted ownership record) ranks
  those nodes by recency and the rest as usual, and logs once (``test_eviction_strategy.py``
  covers a priority that always raises).
- A tree hook whose runtime code raises (corrupted ownership records) leaves SGLang's result
  untouched and logs once per hook (``scalesim.sglang.guard.guarded``).
- A request arriving while its prefix's prefetch is in flight (``load_back`` queued by the
  prefetch step, the copy not yet started) finds the prefix device-resident: no second load,
  the in-flight prefix survives eviction, and the copy lands the right KV.

HiCache on CPU needs ScaleSim's CPU compatibility layer, which rebinds torch globals, so the
host-tier cases (and the hook cases, whose log-once state is per process) run in a subprocess:
this file run as a script (``PYTHONPATH`` holding this folder) prints one JSON object, the last
line of stdout, and asserts nothing; the tests below assert. Device-only cases run here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from script_run import ScriptRun

TIMEOUT_S = 240
#: Agent a's and b's prompts: one 16-token node each (SGLang loads back 10 tokens or more).
PROMPT_A, PROMPT_B, PROMPT_C = list(range(1, 17)), list(range(17, 33)), list(range(33, 49))
MARKER = 7.0  # KV value written into a's slots before it leaves the device


# ---- the subprocess (HiCache on CPU) -------------------------------------------------------
class _Records(logging.Handler):
    """Every message logged under ``scalesim`` in the subprocess."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _host_only_setup(tier_harness: ModuleType, next_call: dict[str, float]) -> Any:
    """a and b back up to the host and leave the device; then ``next_call`` (clock 0)."""
    cache = tier_harness.TierHarness(hicache=True)
    cache.insert("a", "a", PROMPT_A)
    cache.insert("b", "b", PROMPT_B)
    cache.kit._fill_full_kv(cache.allocator, _device_indices(cache, "a"), MARKER)
    cache.back_up_all()
    cache.drain_device()
    cache.update(next_call)
    return cache


def _device_indices(cache: Any, agent: str) -> Any:
    """The device slots of ``agent``'s path end (one node here)."""
    from tier_harness import FULL

    from scalesim.runtime import owner_key

    end = cache.runtime.owners.end_of(owner_key("sim", agent))
    return cache.cache.tree_core.get_component_device_value(end.id, FULL)


def _scheduler_step(cache: Any) -> str | None:
    """One scheduler iteration's ScaleSim hook on ``cache`` (the scheduler is a stand-in: it
    only carries the cache); the name of an exception that escaped it, else None."""
    from scalesim.patches.scheduler import after_process_hicache_events

    scheduler = SimpleNamespace(tree_cache=cache.cache, enable_hierarchical_cache=True)
    try:
        after_process_hicache_events(None, scheduler)
    except Exception as error:  # recorded for the test to assert on, never swallowed there
        return type(error).__name__
    return None


def _finish_loads(cache: Any) -> None:
    """Start the queued host-to-device copies and retire them, as the next batch would."""
    cache.cache.ready_to_load_host_cache()
    for ack in list(cache.cache.cache_controller.ack_load_queue):
        ack.finish_event.synchronize()
    cache.cache.loading_check()


def _counting(cache: Any, refuse_after: int | None) -> list[int]:
    """Wrap the cache's ``load_back``: record calls; refuse (False) after ``refuse_after``."""
    calls: list[int] = []
    real: Callable[..., bool] = cache.cache.load_back

    def load_back(node_id: int, mem_quota: int | None = None, req: Any = None) -> bool:
        calls.append(node_id)
        if refuse_after is not None and len(calls) > refuse_after:
            return False
        return real(node_id, mem_quota=mem_quota, req=req)

    cache.cache.load_back = load_back
    return calls


def load_back_raises(tier_harness: ModuleType) -> dict[str, Any]:
    cache = _host_only_setup(tier_harness, {"a": 1.0, "b": 1.5})
    calls: list[int] = []

    def broken(node_id: int, mem_quota: int | None = None, req: Any = None) -> bool:
        calls.append(node_id)
        raise RuntimeError("load_back broke")

    cache.cache.load_back = broken
    escaped = [_scheduler_step(cache), _scheduler_step(cache)]
    cache.cache.sanity_check()
    counters = cache.runtime.counters
    result = {
        "escaped": escaped,
        "calls": len(calls),
        "failures": counters.kv_prefetch_failures,
        "prefetched_tokens": counters.kv_prefetch_tokens,
        "on_device": sorted(cache.on_device()),
    }
    cache.close()
    return result


def load_back_refused_mid_prefetch(tier_harness: ModuleType) -> dict[str, Any]:
    cache = _host_only_setup(tier_harness, {"a": 1.0, "b": 1.5})
    calls = _counting(cache, refuse_after=1)
    escaped = _scheduler_step(cache)
    _finish_loads(cache)
    cache.cache.sanity_check()
    counters = cache.runtime.counters
    result = {
        "escaped": escaped,
        "calls": len(calls),
        "failures": counters.kv_prefetch_failures,
        "prefetched_tokens": counters.kv_prefetch_tokens,
        "on_device": sorted(cache.on_device()),
    }
    cache.close()
    return result


def request_during_prefetch(tier_harness: ModuleType) -> dict[str, Any]:
    """a is due, b far: the step queues a's load-back; a's request matches before the copy."""
    from sglang.test.kits.unified_radix_cache.fixtures import match_prefix

    cache = _host_only_setup(tier_harness, {"a": 1.0, "b": 50.0})
    cache.insert("c", "c", PROMPT_C)  # on the device, evictable
    calls = _counting(cache, refuse_after=None)
    escaped = _scheduler_step(cache)
    in_flight = len(cache.cache.ongoing_load_back)
    match = match_prefix(cache.cache, PROMPT_A)
    cache.evict_tokens(cache.cfg.kv_size)  # all that is evictable goes: c, not a (locked)
    on_device_under_pressure = sorted(cache.on_device())
    _finish_loads(cache)
    keys, values = cache.kit._snapshot_full_kv(cache.allocator, _device_indices(cache, "a"))
    escaped_again = _scheduler_step(cache)  # the next iteration: a is resident, nothing to do
    cache.cache.sanity_check()
    result = {
        "escaped": [escaped, escaped_again],
        "calls": len(calls),
        "in_flight": in_flight,
        "device_prefix_len": int(match.device_prefix_len),
        "host_hit_length": int(match.host_hit_length),
        "on_device_under_pressure": on_device_under_pressure,
        "loaded_kv": sorted({*keys.flatten().tolist(), *(values - 1).flatten().tolist()}),
        "prefetched_tokens": cache.runtime.counters.kv_prefetch_tokens,
        "failures": cache.runtime.counters.kv_prefetch_failures,
    }
    cache.close()
    return result


def corrupted_tree_hooks(tier_harness: ModuleType) -> dict[str, Any]:
    """Ownership records corrupted so that the split and the removal hooks raise, twice each;
    SGLang's split and eviction results are recorded for the test to compare with stock."""
    from scalesim.runtime import owner_key

    cache = tier_harness.TierHarness()
    cache.insert("a", "a", [1, 2, 3, 4])
    cache.insert("b", "b", [5, 6, 7, 8])
    owners = cache.runtime.owners
    for agent in ("a", "b"):  # a record that is not a set: on_split's copy raises
        owners._owners[owners.end_of(owner_key("sim", agent)).id] = 5
    split_hits = [cache.touch([1, 2]), cache.touch([5, 6])]  # both end inside a node: splits
    for agent in ("a", "b"):  # repaired: only the split hook was to meet the corruption
        owners._owners[owners.end_of(owner_key("sim", agent)).id] = {owner_key("sim", agent)}
    cache.insert("c", "c", [9, 10, 11, 12])
    cache.insert("d", "d", [13, 14, 15, 16])
    for agent in ("c", "d"):  # an owner ending there that has no path: forget raises
        owners._ends[owners.end_of(owner_key("sim", agent)).id] = {owner_key("sim", "ghost")}
    cache.update({"a": 1.0, "b": 1.0, "c": 9.0, "d": 8.0})  # c, then d, go first
    evicted = [cache.cache.evict(_evict_params(4)).num_tokens_evicted for _ in range(2)]
    cache.cache.sanity_check()
    return {
        "split_hits": split_hits,
        "evicted_tokens": evicted,
        "on_device": sorted(cache.on_device()),
        "unaccounted_tokens": cache.unaccounted_tokens(),
    }


def _evict_params(n_tokens: int) -> Any:
    from sglang.srt.mem_cache.base_prefix_cache import EvictParams

    return EvictParams(num_tokens=n_tokens)


def main() -> None:
    from scalesim.sglang import cpu_compat

    if cpu_compat.needed():
        cpu_compat.apply()  # before SGLang builds any host pool
    import tier_harness
    from scalesim.patches.registration import register_and_verify
    from scalesim.patches.table import TREE_HOOKS

    register_and_verify(TREE_HOOKS)
    records = _Records()
    logging.getLogger("scalesim").addHandler(records)
    cases = (
        load_back_raises,
        load_back_refused_mid_prefetch,
        request_during_prefetch,
        corrupted_tree_hooks,
    )
    result: dict[str, Any] = {case.__name__: _run_case(case, tier_harness) for case in cases}
    result["log"] = records.messages
    print(json.dumps(result))


def _run_case(case: Callable[[ModuleType], dict[str, Any]], module: ModuleType) -> dict[str, Any]:
    """One case's results, or what escaped from it (the test reports it), so that one broken
    case leaves the others to be checked."""
    try:
        return case(module)
    except Exception as error:
        return {"crashed": f"{type(error).__name__}: {error}"}


# ---- the tests -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fault_start(request: pytest.FixtureRequest) -> Iterator[ScriptRun | None]:
    """Starts the subprocess if a selected test needs it (before SGLang is imported here)."""
    needed = any("faults" in item.fixturenames for item in request.session.items)
    run = ScriptRun(Path(__file__).resolve(), timeout_s=TIMEOUT_S) if needed else None
    yield run
    if run is not None:
        run.stop()


@pytest.fixture(scope="module")
def faults(fault_start: ScriptRun | None) -> dict[str, Any]:
    assert fault_start is not None
    return fault_start.results()


@pytest.fixture(scope="module")
def harness(fault_start: ScriptRun | None) -> ModuleType:
    """``tier_harness`` (imports SGLang), with ScaleSim's tree hooks installed once."""
    import tier_harness
    from scalesim.patches.registration import register_and_verify
    from scalesim.patches.table import TREE_HOOKS

    register_and_verify(TREE_HOOKS)
    return tier_harness


def _case(faults: dict[str, Any], name: str) -> dict[str, Any]:
    case: dict[str, Any] = faults[name]
    assert "crashed" not in case, f"{name} raised into the test: {case['crashed']}"
    return case


def _logged(faults: dict[str, Any], text: str) -> int:
    return sum(text in message for message in faults["log"])


def test_raising_load_back_never_escapes_the_prefetch_hook(faults: dict[str, Any]) -> None:
    """Guards against a load-back error failing the scheduler iteration: it is contained,
    logged once however often it recurs, and the prefix stays on the host."""
    case = _case(faults, "load_back_raises")
    assert case["escaped"] == [None, None]
    assert case["calls"] == 2  # one per iteration: the step stops at the first error
    assert case["on_device"] == [] and case["prefetched_tokens"] == 0
    assert _logged(faults, "hook process_hicache_events failed") == 1


def test_raising_load_back_counts_as_a_prefetch_failure(faults: dict[str, Any]) -> None:
    """Regression: a load_back that raised reached the hook's guard without being counted."""
    assert _case(faults, "load_back_raises")["failures"] == 2


def test_load_back_refused_mid_prefetch_counts_and_keeps_the_rest(faults: dict[str, Any]) -> None:
    """Memory exhausted mid-prefetch: a (nearest) was loaded, SGLang refused b."""
    case = _case(faults, "load_back_refused_mid_prefetch")
    assert case["escaped"] is None
    assert (case["calls"], case["failures"]) == (2, 1)
    assert case["prefetched_tokens"] == len(PROMPT_A)
    assert case["on_device"] == ["a"]


def test_request_during_prefetch_finds_its_prefix_on_the_device(faults: dict[str, Any]) -> None:
    """A request matching while its prefix's load-back is in flight: a device hit, nothing
    left to load from the host, so SGLang loads nothing twice; the copy then lands a's KV."""
    case = _case(faults, "request_during_prefetch")
    assert case["escaped"] == [None, None]
    assert case["in_flight"] == 1
    assert (case["device_prefix_len"], case["host_hit_length"]) == (len(PROMPT_A), 0)
    assert case["on_device_under_pressure"] == ["a"]  # the in-flight prefix is locked
    assert case["calls"] == 1  # the next iteration finds a resident: no second load
    assert case["loaded_kv"] == [MARKER]
    assert (case["prefetched_tokens"], case["failures"]) == (len(PROMPT_A), 0)


def test_corrupted_ownership_leaves_splits_and_evictions_to_sglang(faults: dict[str, Any]) -> None:
    """Guards against a hook error changing SGLang's own result: the splits still split (the
    matches hit the split-off prefixes), the evictions still free the farthest leaves' tokens
    without leaking a slot, and each hook logs its failure once."""
    case = _case(faults, "corrupted_tree_hooks")
    assert case["split_hits"] == [2, 2]
    assert case["evicted_tokens"] == [4, 4]
    assert case["on_device"] == ["[1, 2]", "[5, 6]", "a", "b"]
    assert case["unaccounted_tokens"] == 0
    assert _logged(faults, "hook split_node failed") == 1
    assert _logged(faults, "hook unregister_node failed") == 1


def test_priority_failing_for_some_nodes_ranks_them_by_recency(
    harness: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """A corrupted ownership record breaks the rank of its node only: that node goes first
    (as an unknown agent's, by recency), the others keep their distance order, and the
    fallback keys compare with the normal ones (no TypeError inside SGLang's heap)."""
    from scalesim.runtime import owner_key

    cache = harness.TierHarness()
    for agent, tokens in (("a", [1, 2, 3, 4]), ("b", [5, 6, 7, 8]), ("c", [9, 10, 11, 12])):
        cache.insert(agent, agent, tokens)
    cache.insert("d", "d", [13, 14, 15, 16])
    cache.update({"a": 1.0, "b": 5.0, "c": 3.0, "d": 9.0})
    owners = cache.runtime.owners
    for agent in ("c", "a"):  # an owner key that is not a string: the rank raises
        owners._owners[owners.end_of(owner_key("sim", agent)).id] = {None}
    assert cache.drain_device() == ["a", "c", "d", "b"]  # a used before c: LRU among them
    assert sum("falling back to LRU" in message for message in caplog.messages) == 1


if __name__ == "__main__":
    main()
