"""``social`` workload: OASIS users' real activity, follows and cascades, tiled to N agents.

Who calls it: :func:`scalesim.bench.workloads.generate`. Agent ``i`` is a copy of real
user ``i mod 111`` (``social_data``) in tile ``i // 111``. Follow graph: each tile keeps
the data's own follow edges; as those 79 edges (a star around one account) cannot carry
cascades of 108-829 users, every agent also follows ``log2(1 + its real following
count)`` agents drawn across all tiles with weight ``sqrt(real follower count)`` (damped
so the one account with 9 M followers does not absorb every edge of a small network).

Calls: an agent reads its feed (one call) at activations drawn from its real hourly
profile, ``ACTIVATIONS_PER_COUNT`` expected activations per count in that hour of each
day (``social_activity``). ``CASCADES_PER_DAY_PER_1000`` posts a day (per 1,000 agents)
start at uniform times from popularity-weighted authors, each replaying one real cascade
(drawn uniformly): the repost tree grows breadth-first along followers down to the real
depth, ``BREADTH`` of the users still to place joining at each level, until the real size
(capped by the network); each reposter's call comes at a time drawn from the real
cascade's timing distribution (``RealCascade.quantile_hours``), earlier levels first, and
depends on the call it reposts. Posting or reposting grows the agent's memory.

Hints are what the simulation can estimate: after each call, the expected next
activation from the agent's hourly profile (exact expectation of its Poisson process);
when an agent reposts, the followers it reaches are the cascade frontier, expected to
act one hop later (:class:`scalesim.distance.ActivationPaths`, hop = half the data's
median activation time) when that is sooner than what they were told.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path

from scalesim.distance import ActivationPaths, ActivationState

from ..trace import Segment, Trace, TraceHeader
from .common import DAY_STEPS, SYSTEM_TOKENS, TraceBuilder, ceil_steps, make_agents
from .social_activity import HOUR_STEPS, activation_steps, expected_wait_steps
from .social_data import RealCascade, SocialData, SocialUser, load_social

ACTIVATIONS_PER_COUNT = 1.0
CASCADES_PER_DAY_PER_1000 = 48
BREADTH = 0.5
POST_TOKENS = (60, 200)
FEED_OUTPUT = (20, 60)
POST_OUTPUT = (40, 120)
REPOST_OUTPUT = (20, 60)


def tile_followers(
    users: tuple[SocialUser, ...], agents: int, rng: random.Random
) -> list[list[int]]:
    """followers[b]: the agents that follow agent b (ascending), see the module docstring."""
    count = len(users)
    weights = [math.sqrt(users[agent % count].followers_count) + 1.0 for agent in range(agents)]
    cumulative = list(itertools.accumulate(weights))
    followers: list[list[int]] = [[] for _ in range(agents)]
    for agent in range(agents):
        user, base = users[agent % count], agent - agent % count
        chosen = {base + other for other in user.following if base + other < agents}
        extra = min(agents - 1, round(math.log2(1 + user.following_count)))
        chosen.update(rng.choices(range(agents), cum_weights=cumulative, k=extra))
        chosen.discard(agent)
        for followee in sorted(chosen):
            followers[followee].append(agent)
    return followers


@dataclass
class _Cascade:
    """One post's repost tree: its members' parents (-1: the author) and call ids."""

    post: Segment
    members: tuple[int, ...]
    parents: tuple[int, ...]
    call_ids: list[str]
    exposed: set[int]


class _Social:
    """One run: events are (step, sequence, agent, cascade number or -1 for a feed read,
    member position)."""

    def __init__(self, data: SocialData, *, agents: int, steps: int, seed: int, loras: bool):
        self.rng = random.Random(seed)
        self.data = data
        self.contexts = make_agents(agents, self.rng)
        self.followers = tile_followers(data.users, agents, self.rng)
        self.rates = [
            tuple(
                count * ACTIVATIONS_PER_COUNT
                for count in data.users[agent % len(data.users)].hourly
            )
            for agent in range(agents)
        ]
        self.builder = TraceBuilder(self.rng, loras=loras, horizon=steps)
        self.system = Segment("sys/social", SYSTEM_TOKENS)
        median_hours = statistics.median(cascade.median_hours for cascade in data.cascades)
        self.estimator = ActivationPaths(hop_delay=median_hours * HOUR_STEPS / 2)
        self.cascades: list[_Cascade] = []
        self.told: list[int | None] = [None] * agents
        self.cascade_eta: list[int | None] = [None] * agents
        self.steps = steps

    def run(self) -> None:
        events: list[tuple[int, int, int, int, int]] = []
        sequence = itertools.count()
        for agent in range(len(self.contexts)):
            self._hint_expected(agent, 0)
            for step in activation_steps(self.rates[agent], self.steps, self.rng):
                events.append((step, next(sequence), agent, -1, 0))
        for number, cascade in enumerate(self._start_cascades()):
            for position, (agent, step) in enumerate(cascade):
                events.append((step, next(sequence), agent, number, position))
        for step, _, agent, number, position in sorted(events):
            if step >= self.steps:
                continue
            if number < 0:
                self._call(agent, step, output=FEED_OUTPUT)
                self._hint_expected(agent, step)
            else:
                self._repost(self.cascades[number], position, step)

    def _start_cascades(self) -> list[list[tuple[int, int]]]:
        """Every cascade's members as (agent, step), in breadth-first order."""
        agents = len(self.contexts)
        count = round(CASCADES_PER_DAY_PER_1000 * agents / 1000 * self.steps / DAY_STEPS)
        popularity = [len(followers) + 1 for followers in self.followers]
        starts = sorted(self.rng.randrange(self.steps) for _ in range(max(1, count)))
        planned = []
        for number, start in enumerate(starts):
            real = self.rng.choice(self.data.cascades)
            root = self.rng.choices(range(agents), weights=popularity)[0]
            members, parents = self._grow(real, root)
            hours = sorted(real.quantile_hours(self.rng.random()) for _ in members[1:])
            steps = [start] + [start + round(hour * HOUR_STEPS) for hour in hours]
            post = Segment(f"post/p{number}", self.rng.randint(*POST_TOKENS))
            self.cascades.append(
                _Cascade(post, tuple(members), tuple(parents), [""] * len(members), {root})
            )
            planned.append(list(zip(members, steps, strict=True)))
        return planned

    def _grow(self, real: RealCascade, root: int) -> tuple[list[int], list[int]]:
        """Breadth-first repost tree from ``root``: members and each one's parent position."""
        target = min(real.users, len(self.contexts))
        members, parents, level = [root], [-1], [0]
        for depth in range(1, real.depth + 1):
            remaining = target - len(members)
            exposer: dict[int, int] = {}
            for position in level:
                for follower in self.followers[members[position]]:
                    exposer.setdefault(follower, position)
            candidates = sorted(set(exposer) - set(members))
            levels_left = real.depth - depth
            want = remaining
            if levels_left:
                want = max(1, min(remaining - levels_left, round(remaining * BREADTH)))
            chosen = self.rng.sample(candidates, max(0, min(want, len(candidates), remaining)))
            if not chosen:
                break
            level = list(range(len(members), len(members) + len(chosen)))
            members += chosen
            parents += [exposer[agent] for agent in chosen]
        return members, parents

    def _repost(self, cascade: _Cascade, position: int, step: int) -> None:
        agent, parent = cascade.members[position], cascade.parents[position]
        deps = (cascade.call_ids[parent],) if parent >= 0 else ()
        output = REPOST_OUTPUT if deps else POST_OUTPUT
        cascade.call_ids[position] = self._call(
            agent, step, output=output, post=cascade.post, deps=deps
        )
        self.contexts[agent].grow_memory(self.rng)
        self.cascade_eta[agent] = None
        self._expose(cascade, agent, step)
        self._hint_expected(agent, step)

    def _expose(self, cascade: _Cascade, agent: int, step: int) -> None:
        """The followers a repost reaches are the frontier: hinted one hop later if sooner."""
        frontier = [other for other in self.followers[agent] if other not in cascade.exposed]
        cascade.exposed.update(frontier)
        own = self.contexts[agent].agent
        world = ActivationState(
            followers={own: [self.contexts[other].agent for other in frontier]}, frontier=[own]
        )
        for agent_id, distance in sorted(self.estimator.estimate(world, step).items()):
            index = int(agent_id[1:])
            if index == agent:
                continue
            eta = step + ceil_steps(distance)
            pending = self.cascade_eta[index]
            self.cascade_eta[index] = (
                eta if pending is None or pending <= step else min(pending, eta)
            )
            told = self.told[index]
            if told is None or told <= step or eta < told:
                self.told[index] = eta
                self.builder.hint(step, agent_id, eta)

    def _hint_expected(self, agent: int, step: int) -> None:
        """After a call: the expected next activation, or a sooner pending cascade estimate."""
        wait = expected_wait_steps(self.rates[agent], step)
        expected = None if wait is None else step + max(1, ceil_steps(wait))
        pending = self.cascade_eta[agent]
        if pending is not None and pending > step:
            expected = pending if expected is None else min(expected, pending)
        self.told[agent] = expected
        self.builder.hint(step, self.contexts[agent].agent, expected)

    def _call(
        self,
        agent: int,
        step: int,
        *,
        output: tuple[int, int],
        post: Segment | None = None,
        deps: tuple[str, ...] = (),
    ) -> str:
        context = self.contexts[agent]
        prompt = context.prefix(self.system) + ((post,) if post else ())
        return self.builder.call(
            context.agent, step, prompt, output_len=self.rng.randint(*output), deps=deps
        )


def generate_social(
    *, agents: int, steps: int, seed: int, loras: bool = False, data_dir: Path | None = None
) -> Trace:
    """A ``social`` trace of ``agents`` agents over ``steps`` steps of 10 s (a day: 8,640).

    ``data_dir`` holds ``oasis/`` (default: ``real_data.default_data_dir()``).
    """
    social = _Social(load_social(data_dir), agents=agents, steps=steps, seed=seed, loras=loras)
    social.run()
    header = TraceHeader(
        name=f"social-{agents}",
        agents=agents,
        steps=steps,
        seed=seed,
        description="OASIS users' hourly activity, follows and real cascades, tiled; 10 s steps",
    )
    return social.builder.build(header)
