"""ScaleSim's LoRA policy inside SGLang's real ``LoRAMemoryPool.prepare_lora_batch`` (CPU).

The pool is SGLang's class with its slot bookkeeping only (no model: the weight copy is
recorded instead of done), so the slot order asserted here is the one the server gets:
SGLang picks free slots first, drops the batch's adapters and pinned ones from the candidates,
prefers adapters over the base model, then asks the policy.
"""

from __future__ import annotations

from typing import Any

from sglang.srt.lora.lora_registry import LoRARef
from sglang.srt.lora.mem_pool import EMPTY_SLOT, LoRAMemoryPool

from scalesim.runtime import RuntimeConfig, ScaleSimRuntime, owner_key
from scalesim.sglang.lora import ScaleSimLoRAPolicy
from scalesim.sglang.lora_prefetch import lora_prefetch_step

NS = "town"


class _Pool(LoRAMemoryPool):
    """SGLang's pool without buffers: ``load_lora_weight_to_buffer`` records the load."""

    def __init__(self, n_slots: int, policy: ScaleSimLoRAPolicy) -> None:  # no super(): no model
        self.max_loras_per_batch = n_slots
        self.uid_to_buffer_id: dict[str | None, int] = {}
        self.buffer_id_to_uid: list[Any] = [EMPTY_SLOT] * n_slots
        self.eviction_policy = policy
        self.loads: list[str | None] = []

    def load_lora_weight_to_buffer(self, uid: Any, buffer_id: int, *args: Any) -> None:
        self.loads.append(uid)
        if uid is not None:
            self.eviction_policy.count_load()  # as the AFTER hook does

    def resident(self) -> set[str | None]:
        return {uid for uid in self.buffer_id_to_uid if uid is not EMPTY_SLOT}


def _refs(n: int) -> dict[str, LoRARef]:
    return {f"uid{i}": LoRARef(lora_id=f"uid{i}", lora_name=f"lora-{i}") for i in range(n)}


def _policy(next_calls: dict[str, float | None], refs: dict[str, LoRARef]) -> ScaleSimLoRAPolicy:
    runtime = ScaleSimRuntime(RuntimeConfig.from_mapping({"hint_trust": "full"}))
    runtime.predict(NS, next_calls)
    policy = ScaleSimLoRAPolicy()
    policy.bind(runtime, refs)
    policy.slots.declare(NS, {agent: f"lora-{agent[1:]}" for agent in next_calls})
    return policy


def _batch(pool: _Pool, refs: dict[str, LoRARef], *uids: str | None) -> None:
    pool.prepare_lora_batch(set(uids), {}, [], refs, None, None)


def test_slot_evictions_follow_distance_not_recency() -> None:
    refs = _refs(6)
    policy = _policy({"a0": 1, "a1": 50, "a2": 40, "a3": 30, "a4": 20, "a5": 10}, refs)
    pool = _Pool(4, policy)
    _batch(pool, refs, None)  # SGLang loads the base model first
    for index in range(6):
        _batch(pool, refs, f"uid{index}")
    # uid1 (a1, 50) out for uid3, uid2 (40) for uid4, uid3 (30) for uid5; a0's stays.
    assert pool.resident() == {None, "uid0", "uid4", "uid5"}
    assert policy.slots.counters.lora_loads_blocking == 6


def test_lru_alone_would_have_evicted_the_nearest() -> None:
    refs = _refs(6)
    policy = _policy({}, refs)  # no distances: every adapter unknown, LRU on a logical counter
    pool = _Pool(4, policy)
    _batch(pool, refs, None)
    for index in range(6):
        _batch(pool, refs, f"uid{index}")
    assert pool.resident() == {None, "uid3", "uid4", "uid5"}


def test_batch_adapters_are_never_victims_and_base_goes_only_when_alone() -> None:
    refs = _refs(5)
    policy = _policy({"a0": 90, "a1": 80, "a2": 1, "a3": 2, "a4": 3}, refs)
    pool = _Pool(4, policy)
    _batch(pool, refs, None)
    _batch(pool, refs, "uid0", "uid1", "uid2")
    _batch(pool, refs, "uid0", "uid1", "uid2", "uid3")  # only the base model is free to go
    assert pool.resident() == {"uid0", "uid1", "uid2", "uid3"}
    _batch(pool, refs, "uid2", "uid3", "uid4")  # farthest of the rest: uid0 (a0, 90)
    assert pool.resident() == {"uid1", "uid2", "uid3", "uid4"}


class _Manager:
    """The LoRA manager surface the prefetcher uses, over the real pool."""

    def __init__(self, pool: _Pool, refs: dict[str, LoRARef]) -> None:
        self.memory_pool = pool
        self.lora_refs = refs
        self.pending_lora_load_events: dict[str, Any] = {}

    def validate_lora_batch(self, uids: set[str | None]) -> bool:
        return len(uids) <= self.memory_pool.max_loras_per_batch

    def fetch_new_loras(self, new: set[str | None], running: set[str | None]) -> None:
        self.memory_pool.prepare_lora_batch(new | running, {}, [], self.lora_refs, None, None)


class _Scheduler:
    def __init__(self, manager: _Manager, running: list[str | None]) -> None:
        worker = type("Worker", (), {})()
        worker.model_runner = type("Runner", (), {"lora_manager": manager})()
        self.tp_worker = worker
        self.waiting_queue: list[Any] = []
        self.running_batch = type("Batch", (), {"reqs": [_Req(uid) for uid in running]})()
        self.enable_lora_overlap_loading = False


class _Req:
    def __init__(self, lora_id: str | None) -> None:
        self.lora_id = lora_id


def test_prefetch_loads_the_due_adapter_in_place_of_a_farther_idle_one() -> None:
    refs = _refs(6)
    policy = _policy({"a1": 40, "a2": 30, "a3": 50, "a4": 60}, refs)
    pool = _Pool(4, policy)
    _batch(pool, refs, None)
    for uid in ("uid1", "uid2", "uid3"):
        _batch(pool, refs, uid)
    runtime = policy.slots.runtime
    assert runtime is not None
    runtime.predict(NS, {"a0": 1, "a5": 2})
    policy.slots.declare(NS, {"a0": "lora-0", "a5": "lora-5"})
    scheduler = _Scheduler(_Manager(pool, refs), running=["uid3"])  # a3's adapter is running
    assert lora_prefetch_step(scheduler, runtime) == 2
    # uid1 (40) then uid2 (30) gave way; uid3 (50) runs and stays.
    assert pool.resident() == {None, "uid0", "uid3", "uid5"}
    counters = policy.slots.counters
    assert (counters.lora_loads_prefetch, counters.lora_loads_blocking) == (2, 3)
    assert owner_key(NS, "a0") in policy.slots.owners_of("lora-0")
