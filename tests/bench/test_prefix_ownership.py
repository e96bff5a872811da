"""Replay: owning only what the next call repeats (learned tails) beats owning whole prompts.

Each agent's prompt is its persona, then a post and an observation it never sees again (the
diffusion workload's shape). Owning the whole prompt keeps each agent's dead post as near as its
persona; learned ownership leaves those to nobody, so they go first and personas stay.
"""

from __future__ import annotations

import pytest
from scalesim.bench.replay.engine import replay_policies
from scalesim.bench.replay.result import ReplayConfig
from scalesim.bench.trace import Call, Hint, Segment, Trace, TraceHeader

from scalesim.runtime import PrefixOwnership

AGENTS, ROUNDS = 6, 6


def _trace() -> Trace:
    calls, hints = [], [Hint(0, f"a{agent}", agent) for agent in range(AGENTS)]
    for round_ in range(ROUNDS):
        for agent in range(AGENTS):
            step = round_ * AGENTS + agent
            segments = (
                Segment(f"persona/a{agent}", 8),
                Segment(f"post/{round_}-{agent}", 6),
                Segment(f"obs/{round_}-{agent}", 2),
            )
            calls.append(Call(f"c{step}", f"a{agent}", step, segments, 1))
            next_step = step + AGENTS if round_ + 1 < ROUNDS else None
            hints.append(Hint(step, f"a{agent}", next_step))
    return Trace(TraceHeader("tails", AGENTS, ROUNDS * AGENTS), (*calls, *hints))


def _recomputed(ownership: PrefixOwnership, memory_ratio: float, host_ratio: float) -> int:
    config = ReplayConfig(
        memory_ratio=memory_ratio,
        host_ratio=host_ratio,
        token_scale=1,
        prefix_ownership=ownership,
    )
    return replay_policies(_trace(), ["scalesim"], config)["scalesim"].recomputed_tokens


@pytest.mark.parametrize(("memory_ratio", "host_ratio"), [(1.0, 0.0), (1.5, 0.0), (0.5, 1.0)])
def test_learned_ownership_recomputes_less_than_whole_prompts(
    memory_ratio: float, host_ratio: float
) -> None:
    learned = _recomputed(PrefixOwnership.LEARNED, memory_ratio, host_ratio)
    whole = _recomputed(PrefixOwnership.WHOLE, memory_ratio, host_ratio)
    assert learned < whole
