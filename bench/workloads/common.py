"""Shared pieces of the workload generators: time scale, prompt shape, trace assembly.

Every generator draws from one ``random.Random(seed)`` (no global random state, no
``hash()``), so a seed gives a byte-identical trace. Time: one step is
``STEP_SECONDS`` simulated seconds and a simulated day is ``DAY_STEPS`` steps,
the scale of the Generative Agents replay (8,655 steps of 10 s for one day).

Prompt shape (all workloads): a shared system segment, the agent's persona (a few
hundred tokens, fixed), the agent's memory (a new segment id ``mem/<agent>/v<k>``
each time it grows), then workload-specific segments and a unique observation
``obs/<call id>``. Consecutive calls of an agent therefore share the long prefix
system + persona + memory until the memory grows.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..trace import Call, Event, Hint, Segment, Trace, TraceHeader

STEP_SECONDS = 10
DAY_STEPS = 24 * 3600 // STEP_SECONDS
SYSTEM_TOKENS = 400
PERSONA_TOKENS = (300, 800)
MEMORY_START_TOKENS = 200
MEMORY_GROWTH_TOKENS = (30, 90)
MEMORY_MAX_TOKENS = 1500
OBSERVATION_TOKENS = (40, 160)

# Durations of actions in the Generative Agents replay (3 agents, one day, 252 action
# changes, sleep excluded), binned: (steps of 10 s, count). GA plans in 5-min units.
ACTION_STEPS_HISTOGRAM: tuple[tuple[int, int], ...] = (
    (12, 16),
    (30, 56),
    (60, 110),
    (90, 31),
    (120, 7),
    (180, 18),
    (270, 2),
    (720, 1),
)


def sample_action_steps(rng: random.Random) -> int:
    """Duration of one action, in steps, drawn from the Generative Agents histogram."""
    steps = [steps for steps, _ in ACTION_STEPS_HISTOGRAM]
    weights = [count for _, count in ACTION_STEPS_HISTOGRAM]
    return rng.choices(steps, weights=weights)[0]


def agent_id(index: int) -> str:
    """The id of agent number ``index`` (``a0``, ``a1``, ...)."""
    return f"a{index}"


@dataclass
class AgentContext:
    """The prompt-relevant state of one agent: persona size and current memory version."""

    agent: str
    persona_tokens: int
    memory_version: int = 0
    memory_tokens: int = MEMORY_START_TOKENS

    def grow_memory(self, rng: random.Random) -> None:
        """Record new memories: a new memory segment id, somewhat longer (capped)."""
        self.memory_version += 1
        growth = rng.randint(*MEMORY_GROWTH_TOKENS)
        self.memory_tokens = min(MEMORY_MAX_TOKENS, self.memory_tokens + growth)

    def prefix(self, system: Segment) -> tuple[Segment, ...]:
        """System, persona and memory segments: the prefix the agent's calls share."""
        return (
            system,
            Segment(f"persona/{self.agent}", self.persona_tokens),
            Segment(f"mem/{self.agent}/v{self.memory_version}", self.memory_tokens),
        )


def make_agents(count: int, rng: random.Random) -> list[AgentContext]:
    """``count`` agents with persona lengths drawn uniformly from ``PERSONA_TOKENS``."""
    return [AgentContext(agent_id(index), rng.randint(*PERSONA_TOKENS)) for index in range(count)]


def ceil_steps(distance: float) -> int:
    """An estimator's distance (in steps, >= 0) as a whole number of steps."""
    return math.ceil(distance - 1e-9)


class TraceBuilder:
    """Collects calls and hints, numbers calls, drops hints that repeat the last one.

    Generators may emit events ahead of time (a conversation's turns); :meth:`build`
    sorts them stably by step, which keeps every call after its deps (deps are never
    later). Events at or after ``horizon`` (the trace's step count) are dropped;
    calls that depend on a dropped call are never earlier, so they are dropped too.
    """

    def __init__(self, rng: random.Random, *, loras: bool, horizon: int) -> None:
        self._rng = rng
        self._loras = loras
        self._horizon = horizon
        self._events: list[Event] = []
        self._last_hint: dict[str, int | None] = {}
        self.n_calls = 0

    def call(
        self,
        agent: str,
        step: int,
        prefix: Sequence[Segment],
        *,
        output_len: int,
        deps: Sequence[str] = (),
    ) -> str:
        """Append a call whose prompt is ``prefix`` + a unique observation; return its id."""
        call_id = f"c{self.n_calls}"
        self.n_calls += 1
        observation = Segment(f"obs/{call_id}", self._rng.randint(*OBSERVATION_TOKENS))
        if step >= self._horizon:
            return call_id
        self._events.append(
            Call(
                id=call_id,
                agent=agent,
                step=step,
                prompt=(*prefix, observation),
                output_len=output_len,
                deps=tuple(deps),
                lora=agent if self._loras else None,
            )
        )
        return call_id

    def hint(self, step: int, agent: str, next_step: int | None) -> None:
        """Append a hint unless it repeats the agent's last hinted ``next_step``."""
        if step >= self._horizon or self._last_hint.get(agent, -1) == next_step:
            return
        self._last_hint[agent] = next_step
        self._events.append(Hint(step=step, agent=agent, next_step=next_step))

    def build(self, header: TraceHeader) -> Trace:
        """The trace: ``header`` and the events sorted (stably) by step."""
        return Trace(header=header, events=tuple(sorted(self._events, key=_event_step)))


def _event_step(event: Event) -> int:
    return event.step
