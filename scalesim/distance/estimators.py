"""Distance estimators: turn a snapshot of the simulated world into per-agent distances.

Who calls it: ``scalesim.client`` (and benchmarks) when the simulation does not push
distances itself; the result goes to :meth:`DistanceTable.update_batch` with
``source=Source.ESTIMATE``. Every estimator has the same one-method interface,
:class:`DistanceEstimator`, so contract tests run over all of them.

Invariants: ``estimate`` is a pure function of (world, now); it returns finite
distances >= 0 in the caller's time unit, and omits agents it knows nothing about
(they rank as unknown, i.e. by recency).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

from .validation import check_positive

WorldT_contra = TypeVar("WorldT_contra", contravariant=True)


class DistanceEstimator(Protocol[WorldT_contra]):
    """Anything that maps a world snapshot at ``now`` to agent -> distance (>= 0)."""

    def estimate(self, world: WorldT_contra, now: float) -> Mapping[str, float]:
        """Distances in the caller's time unit; agents without an estimate are omitted."""
        ...


class ActionState(NamedTuple):
    """An agent busy with an action until ``action_end`` (absolute time)."""

    agent: str
    action_end: float


class IndependentAgents:
    """Agents that never interact: the next call comes when the current action ends.

    This is the ScaleSim paper's simplest class (e.g. agents following daily plans).
    """

    def estimate(self, world: Sequence[ActionState], now: float) -> Mapping[str, float]:
        return {state.agent: max(0.0, state.action_end - now) for state in world}


@dataclass(frozen=True)
class ActivationState:
    """A graph along which agents activate in order (e.g. reposts over followers).

    ``followers[a]`` are the agents that ``a`` activates when it acts; ``frontier``
    holds agents activated and about to act; ``done`` holds agents that acted and will
    not act again.
    """

    followers: Mapping[str, Sequence[str]]
    frontier: Collection[str]
    done: Collection[str] = frozenset()


class ActivationPaths:
    """Distance = BFS hops from the activation frontier x ``hop_delay``.

    Frontier agents are at distance 0; agents unreachable from the frontier, and
    agents that already acted, are omitted (no estimate).

    Args:
        hop_delay: time for activation to cross one edge, in the caller's unit.
    """

    def __init__(self, *, hop_delay: float) -> None:
        self.hop_delay = check_positive(hop_delay, what="hop_delay")

    def estimate(self, world: ActivationState, now: float) -> Mapping[str, float]:
        hops: dict[str, int] = {}
        queue: deque[str] = deque()
        for agent in sorted(world.frontier):
            if agent not in world.done and agent not in hops:
                hops[agent] = 0
                queue.append(agent)
        while queue:
            agent = queue.popleft()
            for follower in world.followers.get(agent, ()):
                if follower not in hops and follower not in world.done:
                    hops[follower] = hops[agent] + 1
                    queue.append(follower)
        return {agent: count * self.hop_delay for agent, count in hops.items()}
