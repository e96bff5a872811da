"""``town`` workload: a Generative-Agents-like town (homes, venues, plans, conversations).

Who calls it: :func:`scalesim.bench.workloads.generate`. Model, per agent and day:
one call at step 0 (planning the day) while asleep; a wake-up between 06:00 and
09:00; then actions with Generative Agents' durations (``common``), each starting
with a call and often a walk (``WALK_TILES_PER_STEP``) to a favourite venue or home;
a bedtime between 22:00 and 23:50, then sleep until the next day's wake-up. A
``SOCIAL_P`` share of actions is social: on arrival, an agent open to talk starts a
conversation (``CHAT_P``) with another open agent at the same place; its turns are
calls one step apart, each depending on the previous turn; afterwards both agents
call once more, their memories grow and their interrupted actions resume. Every
``REFLECT_EVERY`` action calls an agent reflects (one more call, memory grows).

Hints come from :class:`scalesim.distance.InteractingAgents` over the occupants of
one place, re-run whenever that place's occupancy or an occupant's action changes
(an arrival, a departure, a conversation); walking and sleeping agents cannot be met.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass

from scalesim.distance import InteractingAgents, SpatialAgent

from ..trace import Segment, Trace, TraceHeader
from .common import (
    DAY_STEPS,
    SYSTEM_TOKENS,
    AgentContext,
    TraceBuilder,
    ceil_steps,
    make_agents,
    sample_action_steps,
)
from .town_map import TownMap, build_map

_ARRIVE = 0
_ACTION = 1

WALK_TILES_PER_STEP = 1.0
INTERACTION_TILES = 2.0
SOCIAL_P = 0.3
CHAT_P = 0.3
STAY_P = 0.3
HOME_P = 0.15
REFLECT_EVERY = (25, 40)
WAKE_STEPS = (6 * 360, 9 * 360)
BED_STEPS = (22 * 360, 23 * 360 + 300)
CHAT_TURNS = (2, 10)
ACTION_OUTPUT = (30, 80)
CHAT_OUTPUT = (15, 50)
PLAN_OUTPUT = (150, 300)


@dataclass
class _Agent:
    """Mutable simulation state of one town agent."""

    context: AgentContext
    place: int
    action_end: int = 0
    walking: bool = False
    asleep: bool = True
    open_to_talk: bool = False
    chat_until: int = -1
    epoch: int = 0
    calls_to_reflect: int = 0


class _Town:
    """One run of the town.

    The heap holds (step, kind, agent index, epoch): kind ``_ARRIVE`` sorts before
    ``_ACTION`` at equal steps; an action event is stale once the agent's epoch moved on
    (a conversation rescheduled the end of its action).
    """

    def __init__(self, *, agents: int, steps: int, seed: int, loras: bool) -> None:
        self.rng = random.Random(seed)
        self.map: TownMap = build_map(agents, self.rng)
        self.agents = [
            _Agent(context, self.map.homes[index])
            for index, context in enumerate(make_agents(agents, self.rng))
        ]
        self.builder = TraceBuilder(self.rng, loras=loras, horizon=steps)
        self.system = Segment("sys/town", SYSTEM_TOKENS)
        self.estimator = InteractingAgents(
            interaction_range=INTERACTION_TILES, max_velocity=WALK_TILES_PER_STEP
        )
        self.occupants: dict[int, set[int]] = {}
        self.queue: list[tuple[int, int, int, int]] = []
        self.steps = steps

    def run(self) -> None:
        for index, agent in enumerate(self.agents):
            self._enter(index, agent.place)
            agent.calls_to_reflect = self.rng.randint(*REFLECT_EVERY)
            self._call(index, 0, output=PLAN_OUTPUT)
            self._schedule(index, self.rng.randint(*WAKE_STEPS))
        for index in range(len(self.agents)):
            self._rehint(self.agents[index].place, 0)
        while self.queue and self.queue[0][0] < self.steps:
            step, kind, index, epoch = heapq.heappop(self.queue)
            if kind == _ARRIVE:
                self._arrive(index, step)
            elif epoch == self.agents[index].epoch:
                self._next_action(index, step)

    def _schedule(self, index: int, end: int) -> None:
        agent = self.agents[index]
        agent.epoch += 1
        agent.action_end = end
        heapq.heappush(self.queue, (end, _ACTION, index, agent.epoch))

    def _call(
        self, index: int, step: int, *, output: tuple[int, int], deps: tuple[str, ...] = ()
    ) -> str:
        context = self.agents[index].context
        return self.builder.call(
            context.agent,
            step,
            context.prefix(self.system),
            output_len=self.rng.randint(*output),
            deps=deps,
        )

    def _next_action(self, index: int, step: int) -> None:
        agent = self.agents[index]
        self._call(index, step, output=ACTION_OUTPUT)
        agent.calls_to_reflect -= 1
        if agent.calls_to_reflect <= 0:
            self._call(index, step, output=PLAN_OUTPUT)
            agent.context.grow_memory(self.rng)
            agent.calls_to_reflect = self.rng.randint(*REFLECT_EVERY)
        day_start = step - step % DAY_STEPS
        if step - day_start >= self.rng.randint(*BED_STEPS):
            agent.open_to_talk = False
            self._move(index, step, target=self.map.homes[index])
            agent.asleep = True
            self._schedule(index, day_start + DAY_STEPS + self.rng.randint(*WAKE_STEPS))
            self._rehint(agent.place, step)
            return
        agent.asleep = False
        walk = self._move(index, step, target=self._choose_place(index))
        self._schedule(index, step + walk + sample_action_steps(self.rng))
        agent.open_to_talk = self.rng.random() < SOCIAL_P
        if walk == 0:
            self._arrive(index, step)
        else:
            self._hint_alone(index, step)

    def _choose_place(self, index: int) -> int:
        draw = self.rng.random()
        if draw < STAY_P:
            return self.agents[index].place
        if draw < STAY_P + HOME_P:
            return self.map.homes[index]
        return self.rng.choice(self.map.favourites[index])

    def _move(self, index: int, step: int, *, target: int) -> int:
        """Leave the current place for ``target``; returns the walk in steps (0: stay)."""
        agent = self.agents[index]
        if target == agent.place:
            return 0
        walk = self.map.walk_steps(agent.place, target, speed=WALK_TILES_PER_STEP)
        self.occupants[agent.place].discard(index)
        self._rehint(agent.place, step)
        agent.place = target
        agent.walking = True
        heapq.heappush(self.queue, (step + walk, _ARRIVE, index, agent.epoch))
        return walk

    def _enter(self, index: int, place: int) -> None:
        self.occupants.setdefault(place, set()).add(index)

    def _arrive(self, index: int, step: int) -> None:
        agent = self.agents[index]
        agent.walking = False
        self._enter(index, agent.place)
        partners = sorted(
            other
            for other in self.occupants[agent.place]
            if other != index and self.agents[other].open_to_talk
        )
        if agent.open_to_talk and partners and self.rng.random() < CHAT_P:
            self._converse(index, self.rng.choice(partners), step)
        self._rehint(agent.place, step)

    def _converse(self, first: int, second: int, step: int) -> None:
        """Alternating turns one step apart, then one follow-up call each.

        The chat's schedule is known when it starts, so each speaker's next turn is
        hinted exactly; the interrupted actions resume afterwards, ``turns + 1`` later.
        """
        turns = self.rng.randint(*CHAT_TURNS)
        end = step + turns
        pair = (first, second)
        for offset, index in enumerate(pair):
            self.agents[index].chat_until = end
            self.agents[index].open_to_talk = False
            self.builder.hint(step, self.agents[index].context.agent, step + offset)
        previous: tuple[str, ...] = ()
        for turn in range(turns):
            speaker = self.agents[pair[turn % 2]].context.agent
            previous = (self._call(pair[turn % 2], step + turn, output=CHAT_OUTPUT, deps=previous),)
            self.builder.hint(step + turn, speaker, min(step + turn + 2, end))
        for index in pair:
            agent = self.agents[index]
            self._call(index, end, output=ACTION_OUTPUT, deps=previous)
            agent.context.grow_memory(self.rng)
            self._schedule(index, max(agent.action_end, end) + turns + 1)
            self._hint_alone(index, end)

    def _rehint(self, place: int, step: int) -> None:
        """Re-estimate every occupant of ``place`` (its occupancy or actions changed)."""
        members = sorted(self.occupants.get(place, ()))
        world = [
            self._spatial(index)
            for index in members
            if not self.agents[index].walking and self.agents[index].chat_until <= step
        ]
        for agent_id, distance in self.estimator.estimate(world, step).items():
            self.builder.hint(step, agent_id, step + ceil_steps(distance))

    def _hint_alone(self, index: int, step: int) -> None:
        agent_id = self.agents[index].context.agent
        distance = self.estimator.estimate([self._spatial(index)], step)[agent_id]
        self.builder.hint(step, agent_id, step + ceil_steps(distance))

    def _spatial(self, index: int) -> SpatialAgent:
        agent = self.agents[index]
        place = self.map.places[agent.place]
        jitter = (index % 7) / 10.0
        interactive = agent.open_to_talk and not agent.asleep and not agent.walking
        return SpatialAgent(
            agent.context.agent, place.x + jitter, place.y, agent.action_end, interactive
        )


def generate_town(*, agents: int, steps: int, seed: int, loras: bool = False) -> Trace:
    """A ``town`` trace of ``agents`` agents over ``steps`` steps of 10 s (a day: 8,640)."""
    town = _Town(agents=agents, steps=steps, seed=seed, loras=loras)
    town.run()
    header = TraceHeader(
        name=f"town-{agents}",
        agents=agents,
        steps=steps,
        seed=seed,
        description="Generative-Agents-like town; 10 s steps, 8,640 a day",
    )
    return town.builder.build(header)
