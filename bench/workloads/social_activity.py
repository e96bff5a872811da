"""Hourly activity of social agents: when they activate, and when a simulation expects it.

Who calls it: ``social.py``. An agent activates as a Poisson process whose rate is
constant within each hour of the day and repeats daily (OASIS activates agents by their
hourly activity profile). :func:`activation_steps` draws the real activations;
:func:`expected_wait_steps` is what a simulation that knows only the profile can say
about the next one: the exact expectation of the waiting time under that process.
Steps are ``STEP_SECONDS`` long; rates are activations per hour.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from .common import DAY_STEPS

HOUR_STEPS = DAY_STEPS // 24
_SURVIVAL_FLOOR = 1e-6
_MAX_DAYS = 30


def activation_steps(rates: Sequence[float], steps: int, rng: random.Random) -> list[int]:
    """Steps (ascending, distinct) in ``[0, steps)`` at which the agent activates.

    ``rates[h]``: expected activations in hour ``h`` of each day. Within an hour the
    gaps are exponential (memoryless, so restarting at each hour boundary is exact);
    activations in the same step merge into one.
    """
    found: list[int] = []
    for start in range(0, steps, HOUR_STEPS):
        rate = rates[(start // HOUR_STEPS) % len(rates)] / HOUR_STEPS
        if rate <= 0:
            continue
        end = min(start + HOUR_STEPS, steps)
        moment = start + rng.expovariate(rate)
        while moment < end:
            step = int(moment)
            if not found or found[-1] != step:
                found.append(step)
            moment += rng.expovariate(rate)
    return found


def expected_wait_steps(rates: Sequence[float], step: int) -> float | None:
    """Expected steps from ``step`` to the next activation (None: the agent never acts).

    E[wait] = integral of the survival exp(-Lambda(t)); within an hour of constant rate r
    the piece is S0 (1 - exp(-r L)) / r. Summed hour by hour until the survival is
    negligible (at most ``_MAX_DAYS`` days).
    """
    if not any(rate > 0 for rate in rates):
        return None
    survival, wait, moment = 1.0, 0.0, step
    for _ in range(_MAX_DAYS * len(rates)):
        length = HOUR_STEPS - moment % HOUR_STEPS
        rate = rates[(moment // HOUR_STEPS) % len(rates)] / HOUR_STEPS
        if rate > 0:
            decay = math.exp(-rate * length)
            wait += survival * (1.0 - decay) / rate
            survival *= decay
        else:
            wait += survival * length
        moment += length
        if survival < _SURVIVAL_FLOOR:
            break
    return wait
