"""``village`` workload: the real Generative Agents replay, tiled to any number of agents.

Who calls it: :func:`scalesim.bench.workloads.generate`. The replay (``village_data``)
holds three personas over one day; village ``v`` holds agents ``a{3v}``, ``a{3v+1}``,
``a{3v+2}``, which live that day exactly: an agent calls the LLM when its real action
description changes (a planning call with longer output when the plan item changes),
and each real conversation is one call per real utterance, spread evenly over the
conversation's real duration, each turn depending on the previous one and reading the
conversation so far. Every day starts with a planning call at midnight, and the day
repeats. Villages are shifted by up to ``VILLAGE_SHIFT_STEPS`` (one shift per village,
so its conversations stay together), which keeps every gap between an agent's calls as
in the replay while villages do not call in lockstep. After a conversation both
memories grow; every ``REFLECT_EVERY`` action calls an agent reflects (one more call,
memory grows). A village whose partner of a conversation is missing (the last village
when ``agents`` is not a multiple of three) skips that conversation's turns.

Hints are what a simulation can estimate: after each call, an agent's next call is the
end of its current action by its plan (the replay's next planned action, see
``village_data``: the plan cannot foresee conversations), lowered by
:class:`scalesim.distance.InteractingAgents` when other awake agents of its village are
in the same building (real tile positions, Generative Agents' vision radius and walking
speed). During a conversation the turns are known, so each speaker's next turn is hinted.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path

from scalesim.distance import InteractingAgents, SpatialAgent

from ..trace import Segment, Trace, TraceHeader
from .common import DAY_STEPS, SYSTEM_TOKENS, AgentContext, TraceBuilder, ceil_steps, make_agents
from .village_data import Conversation, Entry, VillageReplay, load_village

VISION_TILES = 8.0  # Generative Agents' persona vision radius (scratch "vision_r")
WALK_TILES_PER_STEP = 1.0  # Generative Agents move one tile per step
VILLAGE_SHIFT_STEPS = 360
REFLECT_EVERY = (25, 40)
ACTION_OUTPUT = (30, 80)
CHAT_OUTPUT = (15, 50)
PLAN_OUTPUT = (150, 300)

_DAY_START = 0
_ENTRY = 1
_CONVERSATION = 2


@dataclass
class _Agent:
    """Mutable state of one village agent."""

    context: AgentContext
    persona: int
    entry: Entry
    action_end: int = 0
    chat_until: int = -1
    calls_to_reflect: int = 0


class _Village:
    """One village: its agents' calls over the horizon, processed in step order."""

    def __init__(self, run: _Run, number: int, shift: int) -> None:
        self.run = run
        self.shift = shift
        replay = run.replay
        self.agents = {
            persona: _Agent(run.contexts[index], persona, replay.entries[persona][0])
            for persona in range(len(replay.names))
            if (index := number * len(replay.names) + persona) < len(run.contexts)
        }
        for agent in self.agents.values():
            agent.calls_to_reflect = run.rng.randint(*REFLECT_EVERY)

    def simulate(self) -> None:
        """Process each step's events, then re-estimate the village once."""
        for step, events in itertools.groupby(self._events(), key=lambda event: event[0]):
            for _, kind, persona, number in events:
                if kind == _CONVERSATION:
                    self._converse(self.run.replay.conversations[number], step)
                else:
                    self._act(self.agents[persona], number, step, plan=kind == _DAY_START)
            self._rehint(step)

    def _events(self) -> list[tuple[int, int, int, int]]:
        """(step, kind, persona, entry or conversation number), in step order."""
        replay, events = self.run.replay, []
        held = {c.step for c in replay.conversations if set(c.participants) <= self.agents.keys()}
        for day in range(self.run.steps // DAY_STEPS + 1):
            base = day * DAY_STEPS + self.shift
            for persona in self.agents:
                for number, entry in enumerate(replay.entries[persona]):
                    kind = _DAY_START if number == 0 else _ENTRY
                    if not (entry.conversing and entry.step in held):
                        events.append((base + entry.step, kind, persona, number))
            for number, conversation in enumerate(replay.conversations):
                if conversation.step in held:
                    events.append((base + conversation.step, _CONVERSATION, -1, number))
        return [event for event in sorted(events) if event[0] < self.run.steps]

    def _act(self, agent: _Agent, number: int, step: int, *, plan: bool) -> None:
        """The call at a change of action; state follows the replay's entry."""
        entry = self.run.replay.entries[agent.persona][number]
        plan = plan or entry.activity != agent.entry.activity
        agent.entry = entry
        agent.action_end = step - entry.step + entry.planned_end
        self.run.call(agent.context, step, output=PLAN_OUTPUT if plan else ACTION_OUTPUT)
        agent.calls_to_reflect -= 1
        if agent.calls_to_reflect <= 0:
            self.run.call(agent.context, step, output=PLAN_OUTPUT)
            agent.context.grow_memory(self.run.rng)
            agent.calls_to_reflect = self.run.rng.randint(*REFLECT_EVERY)

    def _converse(self, conversation: Conversation, step: int) -> None:
        """One call per utterance, each reading the conversation so far; memories grow."""
        duration = min(conversation.ends) - conversation.step
        previous: tuple[str, ...] = ()
        utterances: list[Segment] = []
        turn_steps: dict[int, list[int]] = {persona: [] for persona in conversation.participants}
        for turn, persona in enumerate(conversation.speakers):
            turn_step = step + turn * duration // len(conversation.speakers)
            output = self.run.rng.randint(*CHAT_OUTPUT)
            context = self.agents[persona].context
            call_id = self.run.call(
                context, turn_step, output=output, deps=previous, extra=tuple(utterances)
            )
            previous = (call_id,)
            utterances.append(Segment(f"utt/{call_id}", output))
            turn_steps[persona].append(turn_step)
        for persona, end in zip(conversation.participants, conversation.ends, strict=True):
            agent = self.agents[persona]
            agent.chat_until = step + end - conversation.step
            agent.context.grow_memory(self.run.rng)
            self._hint_turns(agent, step, [*turn_steps[persona], agent.chat_until])

    def _hint_turns(self, agent: _Agent, step: int, calls: list[int]) -> None:
        """A speaker knows its turns: at the start and after each turn, hint the next one."""
        if calls[0] > step:
            self.run.builder.hint(step, agent.context.agent, calls[0])
        for made, following in itertools.pairwise(calls):
            self.run.builder.hint(made, agent.context.agent, following)

    def _rehint(self, step: int) -> None:
        """Plan ends, lowered for awake agents that share a building with others."""
        by_sector: dict[str, list[SpatialAgent]] = {}
        for agent in self.agents.values():
            if agent.chat_until > step:
                continue
            if agent.entry.asleep or agent.entry.conversing:
                self.run.builder.hint(step, agent.context.agent, max(step, agent.action_end))
                continue
            x, y = self.run.replay.positions[agent.persona][(step - self.shift) % DAY_STEPS]
            spatial = SpatialAgent(agent.context.agent, x, y, agent.action_end)
            by_sector.setdefault(agent.entry.sector, []).append(spatial)
        for world in by_sector.values():
            for agent_id, distance in self.run.estimator.estimate(world, step).items():
                self.run.builder.hint(step, agent_id, step + ceil_steps(distance))


class _Run:
    """Everything the villages share: the replay, agents' contexts, the trace builder."""

    def __init__(self, replay: VillageReplay, *, agents: int, steps: int, seed: int, loras: bool):
        self.replay = replay
        self.rng = random.Random(seed)
        self.contexts = make_agents(agents, self.rng)
        self.builder = TraceBuilder(self.rng, loras=loras, horizon=steps)
        self.system = Segment("sys/village", SYSTEM_TOKENS)
        self.estimator = InteractingAgents(
            interaction_range=VISION_TILES, max_velocity=WALK_TILES_PER_STEP
        )
        self.steps = steps

    def simulate(self) -> None:
        villages = math.ceil(len(self.contexts) / len(self.replay.names))
        shifts = [self.rng.randrange(VILLAGE_SHIFT_STEPS) for _ in range(villages)]
        for number, shift in enumerate(shifts):
            _Village(self, number, shift).simulate()

    def call(
        self,
        context: AgentContext,
        step: int,
        *,
        output: tuple[int, int] | int,
        deps: tuple[str, ...] = (),
        extra: tuple[Segment, ...] = (),
    ) -> str:
        """One call: the agent's prefix, ``extra`` segments, a fresh observation."""
        output_len = output if isinstance(output, int) else self.rng.randint(*output)
        prompt = (*context.prefix(self.system), *extra)
        return self.builder.call(context.agent, step, prompt, output_len=output_len, deps=deps)


def generate_village(
    *, agents: int, steps: int, seed: int, loras: bool = False, data_dir: Path | None = None
) -> Trace:
    """A ``village`` trace of ``agents`` agents over ``steps`` steps of 10 s (a day: 8,640).

    ``data_dir`` holds ``generative_agents/`` (default: ``real_data.default_data_dir()``).
    """
    run = _Run(load_village(data_dir), agents=agents, steps=steps, seed=seed, loras=loras)
    run.simulate()
    header = TraceHeader(
        name=f"village-{agents}",
        agents=agents,
        steps=steps,
        seed=seed,
        description="Generative Agents replay (3 personas, one real day) tiled into villages; "
        "10 s steps",
    )
    return run.builder.build(header)
