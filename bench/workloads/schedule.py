"""``schedule`` workload: agents on a public timetable, plus agents nobody can foresee.

Most agents (``SCHEDULED_SHARE``) keep bookings: each has a period (30 min to 3 h) and an offset
on a shared timetable, and calls at each booking, slipping by a few steps either way; now and
then a booking is cancelled (``CANCEL_P``) and the agent calls at the next one instead. The rest
are on call: they are handed tasks at random (Poisson, mean gap ``ON_CALL_MEAN_STEPS``).

Hints are what such a simulation can estimate, never the true next call: a scheduled agent's
next booking (wrong by the slip, and by a whole period when the booking is cancelled: an early
prediction that does not happen); an on-call agent's expected next assignment, ``now + mean``
(as often early as late, by about the mean itself). A held-out-style mix of good and poor hints
for the learned trust to tell apart, agent by agent.
"""

from __future__ import annotations

import heapq
import random

from ..trace import Segment, Trace, TraceHeader
from .common import SYSTEM_TOKENS, TraceBuilder, make_agents

SCHEDULED_SHARE = 0.7
PERIODS_STEPS = (180, 360, 720, 1080)  # 30 min, 1 h, 2 h, 3 h
SLIP_STEPS = 12  # a booking happens up to 2 min early or late
CANCEL_P = 0.1
ON_CALL_MEAN_STEPS = 240
MEMORY_GROWTH_P = 0.1
OUTPUT_TOKENS = (30, 80)


def generate_schedule(*, agents: int, steps: int, seed: int, loras: bool = False) -> Trace:
    """A ``schedule`` trace of ``agents`` agents over ``steps`` steps of 10 s."""
    rng = random.Random(seed)
    contexts = make_agents(agents, rng)
    builder = TraceBuilder(rng, loras=loras, horizon=steps)
    system = Segment("sys/schedule", SYSTEM_TOKENS)
    periods = [
        rng.choice(PERIODS_STEPS) if rng.random() < SCHEDULED_SHARE else None for _ in range(agents)
    ]
    bookings = [rng.randrange(period) if period else 0 for period in periods]
    queue = [
        (_first_call(rng, booking, period), index)
        for index, (booking, period) in enumerate(zip(bookings, periods, strict=True))
    ]
    heapq.heapify(queue)
    while queue and queue[0][0] < steps:
        step, index = heapq.heappop(queue)
        context, period = contexts[index], periods[index]
        builder.call(
            context.agent, step, context.prefix(system), output_len=rng.randint(*OUTPUT_TOKENS)
        )
        if rng.random() < MEMORY_GROWTH_P:
            context.grow_memory(rng)
        if period is None:
            builder.hint(step, context.agent, step + ON_CALL_MEAN_STEPS)
            heapq.heappush(queue, (step + 1 + _assignment_gap(rng), index))
            continue
        bookings[index] += period  # the booking just served is done
        builder.hint(step, context.agent, bookings[index])
        while rng.random() < CANCEL_P:
            bookings[index] += period
        heapq.heappush(queue, (_slipped(rng, bookings[index], after=step), index))
    header = TraceHeader(
        name=f"schedule-{agents}",
        agents=agents,
        steps=steps,
        seed=seed,
        description="agents keeping bookings on a timetable (estimated: slips, cancellations) "
        "and on-call agents given random tasks; 10 s steps",
    )
    return builder.build(header)


def _first_call(rng: random.Random, booking: int, period: int | None) -> int:
    return booking if period else _assignment_gap(rng)


def _assignment_gap(rng: random.Random) -> int:
    return int(rng.expovariate(1.0 / ON_CALL_MEAN_STEPS))


def _slipped(rng: random.Random, booking: int, *, after: int) -> int:
    """When the booking really happens: a few steps early or late, never before ``after``."""
    return max(after + 1, booking + rng.randint(-SLIP_STEPS, SLIP_STEPS))
