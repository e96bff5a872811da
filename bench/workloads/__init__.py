"""Seeded, deterministic workload generators that produce :class:`~scalesim.bench.trace.Trace`.

Who calls it: ``scalesim bench gen`` (``bench/cli.py``) and the tests. Each generator
takes ``agents``, ``steps`` (10 s each; a simulated day is 8,640), ``seed`` and
``loras`` (each call names its agent's own adapter, ``lora: "<agent id>"``), draws
only from ``random.Random(seed)`` and returns the same trace for the same arguments.
Every agent's calls share the prefix system + persona + memory (see ``common``).

:data:`REAL_WORKLOADS` are built from real data sets that live outside the repository
(``real_data``): ``village`` (the Generative Agents replay) and ``social`` (OASIS users
and cascades). They take a ``data_dir`` as well; the synthetic :data:`WORKLOADS` do not.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from ..trace import Trace
from .diffusion import generate_diffusion
from .independent import generate_independent
from .schedule import generate_schedule
from .social import generate_social
from .town import generate_town
from .village import generate_village
from .workflow import generate_workflow


class Workload(Protocol):
    """A generator: the trace of ``agents`` agents over ``steps`` steps for ``seed``."""

    def __call__(self, *, agents: int, steps: int, seed: int, loras: bool = False) -> Trace: ...


class RealWorkload(Protocol):
    """A generator from a real data set found under ``data_dir`` (None: the default)."""

    def __call__(
        self,
        *,
        agents: int,
        steps: int,
        seed: int,
        loras: bool = False,
        data_dir: Path | None = None,
    ) -> Trace: ...


WORKLOADS: Mapping[str, Workload] = {
    "town": generate_town,
    "independent": generate_independent,
    "diffusion": generate_diffusion,
    "workflow": generate_workflow,
    "schedule": generate_schedule,
}

REAL_WORKLOADS: Mapping[str, RealWorkload] = {
    "village": generate_village,
    "social": generate_social,
}


def generate(
    workload: str,
    *,
    agents: int,
    steps: int,
    seed: int,
    loras: bool = False,
    data_dir: Path | None = None,
) -> Trace:
    """The trace of ``workload`` (a key of :data:`WORKLOADS` or :data:`REAL_WORKLOADS`).

    ``data_dir`` is where the real data sets are (only the real workloads read it).

    Raises:
        ValueError: unknown workload, or ``agents`` or ``steps`` below 1.
        FileNotFoundError: a real workload's data set is missing.
    """
    if workload not in WORKLOADS and workload not in REAL_WORKLOADS:
        names = sorted([*WORKLOADS, *REAL_WORKLOADS])
        raise ValueError(f"unknown workload {workload!r}; choose from {names}")
    if agents < 1 or steps < 1:
        raise ValueError(f"need agents >= 1 and steps >= 1, got {agents} and {steps}")
    if workload in REAL_WORKLOADS:
        real = REAL_WORKLOADS[workload]
        return real(agents=agents, steps=steps, seed=seed, loras=loras, data_dir=data_dir)
    return WORKLOADS[workload](agents=agents, steps=steps, seed=seed, loras=loras)
