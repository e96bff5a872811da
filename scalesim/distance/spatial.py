"""Estimators for agents that interact in space.

Two workload classes: interacting agents of the ScaleSim paper (an agent may be
interrupted when another comes within interaction range), and out-of-order
simulation under AI Metropolis's spatiotemporal rules (an agent ahead in simulated
time waits for lagging neighbours). Both follow the :class:`DistanceEstimator`
interface and return finite distances >= 0 in the caller's time unit.

Pair searches sort agents by x and stop scanning once the x gap alone exceeds the
largest radius that could matter, so sparse worlds cost about O(n log n).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from .validation import check_finite, check_positive


class SpatialAgent(NamedTuple):
    """An agent at (x, y), busy until ``action_end``; ``interactive`` if it can be met."""

    agent: str
    x: float
    y: float
    action_end: float
    interactive: bool = True


class InteractingAgents:
    """Distance = min(time left in the action, time until an interactive agent is in range).

    Two agents each move at most ``max_velocity``, so their gap shrinks at most
    ``2 * max_velocity`` per time unit: ``(gap - interaction_range) / (2 * max_velocity)``
    is the earliest time they can meet, an underestimate that errs on keeping state.

    Args:
        interaction_range: distance at which two agents can interact (space units).
        max_velocity: largest speed of any agent (space units per time unit).
    """

    def __init__(self, *, interaction_range: float, max_velocity: float) -> None:
        self.interaction_range = check_finite(interaction_range, what="interaction_range")
        self.max_velocity = check_positive(max_velocity, what="max_velocity")

    def estimate(self, world: Sequence[SpatialAgent], now: float) -> Mapping[str, float]:
        ordered = sorted(world, key=lambda item: (item.x, item.agent))
        result: dict[str, float] = {}
        for index, agent in enumerate(ordered):
            action_left = max(0.0, agent.action_end - now)
            if agent.interactive:
                action_left = self._earliest_meeting(ordered, index, bound=action_left)
            result[agent.agent] = action_left
        return result

    def _earliest_meeting(
        self, ordered: Sequence[SpatialAgent], index: int, *, bound: float
    ) -> float:
        """min(bound, time until an interactive agent can be in range), scanning x outward."""
        agent = ordered[index]
        closing_speed = 2.0 * self.max_velocity
        best = bound
        for direction in (1, -1):
            other_index = index + direction
            while 0 <= other_index < len(ordered):
                other = ordered[other_index]
                if abs(other.x - agent.x) > self.interaction_range + closing_speed * best:
                    break
                if other.interactive:
                    gap = math.hypot(other.x - agent.x, other.y - agent.y)
                    best = min(best, max(0.0, gap - self.interaction_range) / closing_speed)
                other_index += direction
        return best


class StepAgent(NamedTuple):
    """An agent of an out-of-order simulation: at simulation ``step``, position (x, y)."""

    agent: str
    step: int
    x: float
    y: float
    action_end: float


class MetropolisRules:
    """AI Metropolis's spatiotemporal dependency rules (arXiv 2411.03519).

    Args:
        radius_p: perception radius (space units).
        max_velocity: largest distance an agent moves in one step (space units).
    """

    def __init__(self, *, radius_p: float, max_velocity: float) -> None:
        self.radius_p = check_finite(radius_p, what="radius_p")
        self.max_velocity = check_finite(max_velocity, what="max_velocity")

    def coupled(self, first: StepAgent, second: StepAgent) -> bool:
        """Same step and within ``radius_p + max_velocity``: they must advance together."""
        return first.step == second.step and _gap(first, second) <= (
            self.radius_p + self.max_velocity
        )

    def blocked_by(self, agent: StepAgent, other: StepAgent) -> bool:
        """``agent`` is ahead of ``other`` and close enough that ``other`` could reach it."""
        lag = agent.step - other.step
        return lag > 0 and _gap(agent, other) <= (lag + 1) * self.max_velocity + self.radius_p

    def reach(self, max_lag: int) -> float:
        """Largest gap at which two agents ``max_lag`` steps apart can depend on each other."""
        return (max(max_lag, 0) + 1) * self.max_velocity + self.radius_p


class OutOfOrderAgents:
    """Distance = time left in the action + lag behind the slowest blocking neighbour.

    An agent blocked by a neighbour ``lag`` steps behind cannot call before that
    neighbour catches up, which takes ``lag * step_duration``. Coupled agents advance
    together, so each member of a coupled group waits for the group's largest lag.

    Args:
        rules: the dependency rules.
        step_duration: time one lagging step takes to catch up, in the caller's unit.
    """

    def __init__(self, rules: MetropolisRules, *, step_duration: float) -> None:
        self.rules = rules
        self.step_duration = check_positive(step_duration, what="step_duration")

    def estimate(self, world: Sequence[StepAgent], now: float) -> Mapping[str, float]:
        ordered = sorted(world, key=lambda item: (item.x, item.agent))
        steps = [agent.step for agent in ordered]
        reach = self.rules.reach(max(steps, default=0) - min(steps, default=0))
        lags = [0] * len(ordered)
        groups = list(range(len(ordered)))
        for first in range(len(ordered)):
            for second in range(first + 1, len(ordered)):
                if ordered[second].x - ordered[first].x > reach:
                    break
                self._link(ordered, (first, second), lags=lags, groups=groups)
        group_lag: dict[int, int] = {}
        for index, lag in enumerate(lags):
            root = _find(groups, index)
            group_lag[root] = max(group_lag.get(root, 0), lag)
        return {
            agent.agent: max(0.0, agent.action_end - now)
            + group_lag[_find(groups, index)] * self.step_duration
            for index, agent in enumerate(ordered)
        }

    def _link(
        self,
        ordered: Sequence[StepAgent],
        pair: tuple[int, int],
        *,
        lags: list[int],
        groups: list[int],
    ) -> None:
        """Record the blocking lag and coupling between one pair of agents."""
        first, second = pair
        left, right = ordered[first], ordered[second]
        if self.rules.coupled(left, right):
            groups[_find(groups, first)] = _find(groups, second)
        elif self.rules.blocked_by(left, right):
            lags[first] = max(lags[first], left.step - right.step)
        elif self.rules.blocked_by(right, left):
            lags[second] = max(lags[second], right.step - left.step)


def _gap(first: StepAgent, second: StepAgent) -> float:
    return math.hypot(first.x - second.x, first.y - second.y)


def _find(groups: list[int], index: int) -> int:
    """Union-find root with path halving."""
    while groups[index] != index:
        groups[index] = groups[groups[index]]
        index = groups[index]
    return index
