"""``workflow`` workload: many concurrent agentic workflows (KVFlow-style DAGs).

Who calls it: :func:`scalesim.bench.workloads.generate`. Agents are fixed-prompt
roles (a persona and a memory that never grows), grouped into workflow templates
of ``TEMPLATE_SIZE`` roles shaped as a chain or as fan-out/fan-in (a planner, parallel
workers, an aggregator). Each template runs one instance at step 0, then new
instances arrive with exponential gaps of mean ``INSTANCE_GAP_STEPS``, so several
instances of a template can be in flight. A role runs ``NODE_DELAY_STEPS`` after its
last parent finished; its call depends on its parents' calls and its prompt adds the
instance's task segment ``task/w<n>`` to the role's fixed prefix.

Hints come from :class:`scalesim.distance.ActivationPaths` over the template's DAG
(KVFlow's steps-to-execution): whenever an instance starts or a role finishes, every
role of that template is re-estimated as the nearest in-flight instance reaching it
(null when none does: the next arrival is unknown to the simulation).
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass, field

from scalesim.distance import ActivationPaths, ActivationState

from ..trace import Segment, Trace, TraceHeader
from .common import SYSTEM_TOKENS, AgentContext, TraceBuilder, ceil_steps, make_agents

TEMPLATE_SIZE = (3, 8)
FAN_OUT_P = 0.5
INSTANCE_GAP_STEPS = 90
NODE_DELAY_STEPS = (1, 3)
TASK_TOKENS = (100, 300)
OUTPUT_TOKENS = (40, 160)


@dataclass(frozen=True)
class _Template:
    """A DAG of roles: ``children[role]`` run after ``role``; ``parents`` is its inverse."""

    number: int
    roles: tuple[AgentContext, ...]
    children: dict[str, tuple[str, ...]]
    parents: dict[str, tuple[str, ...]]


@dataclass
class _Instance:
    """One workflow in flight: roles ready to run, roles done and their call ids."""

    template: _Template
    task: Segment
    ready: set[str] = field(default_factory=set)
    done: dict[str, str] = field(default_factory=dict)


def _build_templates(contexts: list[AgentContext], rng: random.Random) -> list[_Template]:
    templates: list[_Template] = []
    start = 0
    while start < len(contexts):
        roles = tuple(contexts[start : start + rng.randint(*TEMPLATE_SIZE)])
        start += len(roles)
        names = [role.agent for role in roles]
        if len(names) >= 3 and rng.random() < FAN_OUT_P:
            edges = [(names[0], name) for name in names[1:-1]]
            edges += [(name, names[-1]) for name in names[1:-1]]
        else:
            edges = list(itertools.pairwise(names))
        children = {
            name: tuple(child for parent, child in edges if parent == name) for name in names
        }
        parents = {
            name: tuple(parent for parent, child in edges if child == name) for name in names
        }
        templates.append(_Template(len(templates), roles, children, parents))
    return templates


class _Workflows:
    """One run; the heap holds (step, sequence, instance number, role)."""

    def __init__(self, *, agents: int, steps: int, seed: int, loras: bool) -> None:
        self.rng = random.Random(seed)
        self.contexts = {context.agent: context for context in make_agents(agents, self.rng)}
        self.templates = _build_templates(list(self.contexts.values()), self.rng)
        self.builder = TraceBuilder(self.rng, loras=loras, horizon=steps)
        self.system = Segment("sys/workflow", SYSTEM_TOKENS)
        self.estimator = ActivationPaths(hop_delay=sum(NODE_DELAY_STEPS) / 2)
        self.instances: list[_Instance] = []
        self.in_flight: list[list[_Instance]] = [[] for _ in self.templates]
        self.queue: list[tuple[int, int, int, str]] = []
        self.sequence = itertools.count()
        self.steps = steps

    def run(self) -> None:
        arrivals: list[tuple[int, int]] = []
        for number in range(len(self.templates)):
            step = 0
            while step < self.steps:
                arrivals.append((step, number))
                step += max(1, round(self.rng.expovariate(1.0 / INSTANCE_GAP_STEPS)))
        arrivals.sort()
        for step, number in arrivals:
            while self.queue and self.queue[0][0] <= step:
                self._run_role(*self._pop())
            self._start(number, step)
        while self.queue and self.queue[0][0] < self.steps:
            self._run_role(*self._pop())

    def _pop(self) -> tuple[int, int, str]:
        step, _, instance, role = heapq.heappop(self.queue)
        return step, instance, role

    def _start(self, template_number: int, step: int) -> None:
        template = self.templates[template_number]
        instance = _Instance(
            template, Segment(f"task/w{len(self.instances)}", self.rng.randint(*TASK_TOKENS))
        )
        self.instances.append(instance)
        self.in_flight[template.number].append(instance)
        for role in template.roles:
            if not template.parents[role.agent]:
                self._ready(len(self.instances) - 1, role.agent, step)
        self._rehint(template, step)

    def _ready(self, number: int, role: str, step: int) -> None:
        self.instances[number].ready.add(role)
        heapq.heappush(self.queue, (step, next(self.sequence), number, role))

    def _run_role(self, step: int, number: int, role: str) -> None:
        instance = self.instances[number]
        template = instance.template
        context = self.contexts[role]
        deps = tuple(instance.done[parent] for parent in template.parents[role])
        instance.done[role] = self.builder.call(
            role,
            step,
            (*context.prefix(self.system), instance.task),
            output_len=self.rng.randint(*OUTPUT_TOKENS),
            deps=deps,
        )
        instance.ready.discard(role)
        for child in template.children[role]:
            if all(parent in instance.done for parent in template.parents[child]):
                self._ready(number, child, step + self.rng.randint(*NODE_DELAY_STEPS))
        if len(instance.done) == len(template.roles):
            self.in_flight[template.number].remove(instance)
        self._rehint(template, step)

    def _rehint(self, template: _Template, step: int) -> None:
        """Each role's distance: the nearest in-flight instance that will reach it."""
        nearest: dict[str, int | None] = {role.agent: None for role in template.roles}
        for instance in self.in_flight[template.number]:
            world = ActivationState(template.children, instance.ready, instance.done.keys())
            for role, distance in self.estimator.estimate(world, step).items():
                expected = step + ceil_steps(distance)
                current = nearest[role]
                nearest[role] = expected if current is None else min(current, expected)
        for role, next_step in nearest.items():
            self.builder.hint(step, role, next_step)


def generate_workflow(*, agents: int, steps: int, seed: int, loras: bool = False) -> Trace:
    """A ``workflow`` trace of ``agents`` roles over ``steps`` steps of 10 s."""
    workflows = _Workflows(agents=agents, steps=steps, seed=seed, loras=loras)
    workflows.run()
    header = TraceHeader(
        name=f"workflow-{agents}",
        agents=agents,
        steps=steps,
        seed=seed,
        description="concurrent KVFlow-style workflows of fixed-prompt roles; 10 s steps",
    )
    return workflows.builder.build(header)
