"""``diffusion`` workload: posts spreading over a follower graph (OASIS-like cascades).

Who calls it: :func:`scalesim.bench.workloads.generate`. Every agent calls at step 0
(reading its feed). Follower counts are power-law (each agent follows
``FOLLOWS`` accounts drawn by popularity weight ~ rank^-1/(GAMMA-1)).
``CASCADES_PER_DAY`` posts start at uniform times from popularity-weighted authors;
an agent the post reaches calls the LLM after a delay (exponential, mean
``HOP_DELAY_STEPS``) to read it and reposts with ``REPOST_P``, reaching its own
followers, until the cascade has its target number of reposters, drawn log-normally
around OASIS's Twitter15/16 cascades (108-829 users, median 333; capped by the
network size). A read depends on the call that exposed the agent.

Hints come from :class:`scalesim.distance.ActivationPaths` when a post reaches a
follower frontier: the newly reached agents (0 hops) and their followers (1 hop)
are hinted when that is earlier than what they were last told; after its call an
agent learns whether another post is waiting for it (now) or not (null).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass

from scalesim.distance import ActivationPaths, ActivationState

from ..trace import Segment, Trace, TraceHeader
from .common import DAY_STEPS, SYSTEM_TOKENS, TraceBuilder, ceil_steps, make_agents

FOLLOWS = (5, 30)
GAMMA = 2.2
CASCADES_PER_DAY = 48
HOP_DELAY_STEPS = 30
REPOST_P = 0.3
CASCADE_MEDIAN = 333
CASCADE_RANGE = (108, 829)
POST_TOKENS = (60, 200)
READ_OUTPUT = (20, 60)
POST_OUTPUT = (40, 120)


def build_followers(agents: int, rng: random.Random) -> list[list[int]]:
    """followers[b]: the agents that follow b (power-law in-degree)."""
    ranks = list(range(agents))
    rng.shuffle(ranks)
    weights = [(rank + 1) ** (-1.0 / (GAMMA - 1.0)) for rank in ranks]
    cumulative = list(itertools.accumulate(weights))
    followers: list[list[int]] = [[] for _ in range(agents)]
    for follower in range(agents):
        count = min(agents - 1, rng.randint(*FOLLOWS))
        chosen = set(rng.choices(range(agents), cum_weights=cumulative, k=count))
        for followee in sorted(chosen - {follower}):
            followers[followee].append(follower)
    return followers


class _Diffusion:
    """One run; the heap holds (step, sequence, cascade, agent, exposing call id)."""

    def __init__(self, *, agents: int, steps: int, seed: int, loras: bool) -> None:
        self.rng = random.Random(seed)
        self.contexts = make_agents(agents, self.rng)
        self.followers = build_followers(agents, self.rng)
        self.builder = TraceBuilder(self.rng, loras=loras, horizon=steps)
        self.system = Segment("sys/social", SYSTEM_TOKENS)
        self.estimator = ActivationPaths(hop_delay=HOP_DELAY_STEPS)
        self.queue: list[tuple[int, int, int, int, str]] = []
        self.sequence = itertools.count()
        self.cascades: list[_Cascade] = []
        self.pending = [0] * agents
        self.told: list[int | None] = [None] * agents
        self.steps = steps

    def run(self) -> None:
        for index in range(len(self.contexts)):
            self._call(index, 0, output=READ_OUTPUT, post=None)
        self._start_cascades()
        while self.queue and self.queue[0][0] < self.steps:
            step, _, cascade, index, exposer = heapq.heappop(self.queue)
            self.pending[index] -= 1
            self._read(self.cascades[cascade], index, step=step, exposer=exposer)

    def _start_cascades(self) -> None:
        """Draw every cascade's start, author and target; authors post at once."""
        count = max(1, round(CASCADES_PER_DAY * self.steps / DAY_STEPS))
        weights = [len(followers) + 1 for followers in self.followers]
        starts = sorted(self.rng.randrange(max(self.steps, 1)) for _ in range(count))
        for number, start in enumerate(starts):
            author = self.rng.choices(range(len(self.contexts)), weights=weights)[0]
            target = round(math.exp(self.rng.gauss(math.log(CASCADE_MEDIAN), 0.5)))
            cascade = _Cascade(
                number=number,
                post=Segment(f"post/p{number}", self.rng.randint(*POST_TOKENS)),
                target=min(max(target, CASCADE_RANGE[0]), CASCADE_RANGE[1]),
                exposed={author},
            )
            self.cascades.append(cascade)
            heapq.heappush(self.queue, (start, next(self.sequence), number, author, ""))
            self.pending[author] += 1

    def _read(self, cascade: _Cascade, index: int, *, step: int, exposer: str) -> None:
        """The agent reads the post (one call) and maybe reposts it to its followers."""
        deps = (exposer,) if exposer else ()
        output = READ_OUTPUT if exposer else POST_OUTPUT
        call_id = self._call(index, step, output=output, post=cascade.post, deps=deps)
        if not exposer or (cascade.reposts < cascade.target and self.rng.random() < REPOST_P):
            cascade.reposts += 1
            self.contexts[index].grow_memory(self.rng)
            self._expose(cascade, index, step=step, exposer=call_id)
        self._hint_after_call(index, step)

    def _expose(self, cascade: _Cascade, index: int, *, step: int, exposer: str) -> None:
        frontier = [other for other in self.followers[index] if other not in cascade.exposed]
        self._hint_frontier(cascade, frontier, step)
        for other in frontier:
            cascade.exposed.add(other)
            self.pending[other] += 1
            delay = max(1, round(self.rng.expovariate(1.0 / HOP_DELAY_STEPS)))
            heapq.heappush(
                self.queue, (step + delay, next(self.sequence), cascade.number, other, exposer)
            )

    def _hint_frontier(self, cascade: _Cascade, frontier: list[int], step: int) -> None:
        """Hint the newly reached agents and their followers if that is news to them."""
        ids = [self.contexts[other].agent for other in frontier]
        mapping = {
            self.contexts[other].agent: [self.contexts[far].agent for far in self.followers[other]]
            for other in frontier
        }
        done = {
            self.contexts[far].agent
            for other in frontier
            for far in self.followers[other]
            if far in cascade.exposed
        }
        world = ActivationState(followers=mapping, frontier=ids, done=done)
        for agent_id, distance in sorted(self.estimator.estimate(world, step).items()):
            index = int(agent_id[1:])
            expected = step + ceil_steps(distance)
            told = self.told[index]
            if told is None or told < step or expected < told:
                self.told[index] = expected
                self.builder.hint(step, agent_id, expected)

    def _hint_after_call(self, index: int, step: int) -> None:
        told = self.told[index]
        if self.pending[index] > 0:
            self.told[index] = step
        elif told is None or told <= step:
            self.told[index] = None
        self.builder.hint(step, self.contexts[index].agent, self.told[index])

    def _call(
        self,
        index: int,
        step: int,
        *,
        output: tuple[int, int],
        post: Segment | None,
        deps: tuple[str, ...] = (),
    ) -> str:
        context = self.contexts[index]
        prompt = context.prefix(self.system) + ((post,) if post else ())
        return self.builder.call(
            context.agent, step, prompt, output_len=self.rng.randint(*output), deps=deps
        )


@dataclass
class _Cascade:
    """One post's spread: who it reached and how many reposted it, against its target."""

    number: int
    post: Segment
    target: int
    exposed: set[int]
    reposts: int = 0


def generate_diffusion(*, agents: int, steps: int, seed: int, loras: bool = False) -> Trace:
    """A ``diffusion`` trace of ``agents`` agents over ``steps`` steps of 10 s."""
    diffusion = _Diffusion(agents=agents, steps=steps, seed=seed, loras=loras)
    diffusion.run()
    header = TraceHeader(
        name=f"diffusion-{agents}",
        agents=agents,
        steps=steps,
        seed=seed,
        description="posts spreading over a power-law follower graph; 10 s steps",
    )
    return diffusion.builder.build(header)
