"""The replay's adapter prefetch: the runtime's AdapterSlots plan, blocking loads counted."""

from __future__ import annotations

import random

from scalesim.bench.hint_noise import with_hints
from scalesim.bench.replay.engine import replay_policies
from scalesim.bench.replay.result import ReplayConfig
from scalesim.bench.trace import Call, Segment, Trace, TraceHeader


def adapter_trace(*, agents: int = 12, steps: int = 120, seed: int = 5) -> Trace:
    """Each agent has its own adapter and calls after random gaps of 2-10 steps."""
    rng = random.Random(seed)
    next_step = {f"a{i}": rng.randrange(3) for i in range(agents)}
    calls = []
    for step in range(steps):
        for agent in sorted(next_step):
            if next_step[agent] == step:
                call_id = f"c{len(calls)}"
                prompt = (Segment(f"persona/{agent}", 16), Segment(f"obs/{call_id}", 2))
                calls.append(Call(call_id, agent, step, prompt, 2, lora=agent))
                next_step[agent] = step + rng.randrange(2, 11)
    return with_hints(Trace(TraceHeader("adapters", agents, steps), tuple(calls)), "exact")


def test_known_next_calls_turn_blocking_adapter_loads_into_prefetches() -> None:
    config = ReplayConfig(memory_ratio=1.0, host_ratio=0.0, token_scale=1, lora_slots=3)
    results = replay_policies(adapter_trace(), ["lru", "scalesim"], config)
    lru, scalesim = results["lru"], results["scalesim"]
    assert lru.prefetch_adapter_loads == 0 < scalesim.prefetch_adapter_loads
    assert scalesim.blocking_adapter_loads <= 0.5 * lru.blocking_adapter_loads


def test_without_slot_pressure_nothing_is_prefetched() -> None:
    config = ReplayConfig(memory_ratio=1.0, host_ratio=0.0, token_scale=1, lora_slots=None)
    result = replay_policies(adapter_trace(), ["scalesim"], config)["scalesim"]
    assert (result.blocking_adapter_loads, result.prefetch_adapter_loads) == (12, 0)
