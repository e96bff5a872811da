"""Seeded, deterministic workload generators that produce :class:`~scalesim.bench.trace.Trace`.

Who calls it: ``scalesim bench gen`` (``bench/cli.py``) and the tests. Each generator
takes ``agents``, ``steps`` (10 s each; a simulated day is 8,640), ``seed`` and
``loras`` (each call names its agent's own adapter, ``lora: "<agent id>"``), draws
only from ``random.Random(seed)`` and returns the same trace for the same arguments.
Every agent's calls share the prefix system + persona + memory (see ``common``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ..trace import Trace
from .diffusion import generate_diffusion
from .independent import generate_independent
from .town import generate_town
from .workflow import generate_workflow


class Workload(Protocol):
    """A generator: the trace of ``agents`` agents over ``steps`` steps for ``seed``."""

    def __call__(self, *, agents: int, steps: int, seed: int, loras: bool = False) -> Trace: ...


WORKLOADS: Mapping[str, Workload] = {
    "town": generate_town,
    "independent": generate_independent,
    "diffusion": generate_diffusion,
    "workflow": generate_workflow,
}


def generate(workload: str, *, agents: int, steps: int, seed: int, loras: bool = False) -> Trace:
    """The trace of ``workload`` (a key of :data:`WORKLOADS`).

    Raises:
        ValueError: unknown workload, or ``agents`` or ``steps`` below 1.
    """
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; choose from {sorted(WORKLOADS)}")
    if agents < 1 or steps < 1:
        raise ValueError(f"need agents >= 1 and steps >= 1, got {agents} and {steps}")
    return WORKLOADS[workload](agents=agents, steps=steps, seed=seed, loras=loras)
