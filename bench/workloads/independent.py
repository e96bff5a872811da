"""``independent`` workload: agents acting alone, one LLM call at the start of each action.

Every agent calls at step 0 (planning its day), then at the start of each action;
action durations follow the Generative Agents histogram (``common``), and the
first action is cut at a random point so agents do not move in lockstep. Memory
grows after a call with probability ``MEMORY_GROWTH_P`` (a reflection).

Hints come from :class:`scalesim.distance.IndependentAgents` (distance = time left
in the current action), one per call, when the agent picks its next action: here
the estimate is exact, the best case for a distance-driven policy.
"""

from __future__ import annotations

import heapq
import random

from scalesim.distance import ActionState, IndependentAgents

from ..trace import Segment, Trace, TraceHeader
from .common import SYSTEM_TOKENS, TraceBuilder, ceil_steps, make_agents, sample_action_steps

MEMORY_GROWTH_P = 0.15
OUTPUT_TOKENS = (30, 80)


def generate_independent(*, agents: int, steps: int, seed: int, loras: bool = False) -> Trace:
    """An ``independent`` trace of ``agents`` agents over ``steps`` steps of 10 s."""
    rng = random.Random(seed)
    contexts = make_agents(agents, rng)
    builder = TraceBuilder(rng, loras=loras, horizon=steps)
    system = Segment("sys/independent", SYSTEM_TOKENS)
    estimator = IndependentAgents()
    queue = [(0, index) for index in range(agents)]
    while queue and queue[0][0] < steps:
        step, index = heapq.heappop(queue)
        context = contexts[index]
        builder.call(
            context.agent, step, context.prefix(system), output_len=rng.randint(*OUTPUT_TOKENS)
        )
        if rng.random() < MEMORY_GROWTH_P:
            context.grow_memory(rng)
        duration = sample_action_steps(rng)
        if step == 0:
            duration = rng.randint(1, duration)
        distance = estimator.estimate([ActionState(context.agent, step + duration)], step)
        builder.hint(step, context.agent, step + ceil_steps(distance[context.agent]))
        heapq.heappush(queue, (step + duration, index))
    header = TraceHeader(
        name=f"independent-{agents}",
        agents=agents,
        steps=steps,
        seed=seed,
        description="agents acting alone; actions timed like Generative Agents; 10 s steps",
    )
    return builder.build(header)
