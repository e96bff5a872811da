"""Turn the core's distance estimators into ``next_call`` maps that ``tick`` sends as they are.

Who calls it: simulations that do not know their agents' next calls themselves but can
describe their world (positions, action ends, activation graphs) to an estimator of
``scalesim.distance`` (``IndependentAgents``, ``InteractingAgents``, ``ActivationPaths``,
``OutOfOrderAgents``, or any :class:`~scalesim.distance.DistanceEstimator`).

Estimators return *distances* (time until the next call); the control endpoint takes
*absolute* next-call times. ``next_call = clock + distance`` is >= ``clock`` for every
distance >= 0 (floating-point addition is monotone), so the map always passes the server's
``next_call >= clock`` rule. An infinite distance means "no call expected" and becomes None.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TypeVar

from scalesim.distance import DistanceEstimator

from .errors import ScaleSimValidationError

WorldT = TypeVar("WorldT")


def next_calls(
    estimator: DistanceEstimator[WorldT], world: WorldT, clock: float
) -> dict[str, float | None]:
    """Agent -> absolute next-call time (``clock + distance``), for every estimated agent.

    Args:
        estimator: any distance estimator.
        world: the estimator's snapshot of the simulated world.
        clock: the simulation's time now, in the unit of the estimator's distances.

    Raises:
        ScaleSimValidationError: an estimator returned a negative or NaN distance.
    """
    return next_calls_from_distances(estimator.estimate(world, clock), clock)


def next_calls_from_distances(
    distances: Mapping[str, float], clock: float
) -> dict[str, float | None]:
    """Agent -> ``clock + distance`` (None for an infinite distance: no call expected)."""
    result: dict[str, float | None] = {}
    for agent, distance in distances.items():
        if math.isnan(distance) or distance < 0.0:
            raise ScaleSimValidationError(f"distance of {agent!r} must be >= 0, got {distance!r}")
        result[agent] = None if math.isinf(distance) else clock + distance
    return result


def unestimated(agents: Iterable[str], next_call: Mapping[str, float | None]) -> list[str]:
    """The ``agents`` an estimate left out, in order: pass them as ``tick(unknown=...)``.

    Withdrawing them makes the server rank their memory by recency again instead of by a
    prediction that no longer holds.
    """
    return [agent for agent in dict.fromkeys(agents) if agent not in next_call]
