"""Estimators on hand-worked examples, plus one contract test over all of them."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

from scalesim.distance import (
    ActionState,
    ActivationPaths,
    ActivationState,
    DistanceEstimator,
    DistanceTable,
    IndependentAgents,
    InteractingAgents,
    InvalidEntryError,
    MetropolisRules,
    OutOfOrderAgents,
    Source,
    SpatialAgent,
    StepAgent,
    check_id,
)


def test_independent_agents_wait_for_their_action_to_end() -> None:
    world = [ActionState("a", 30.0), ActionState("b", 12.0), ActionState("done", 5.0)]
    assert IndependentAgents().estimate(world, 10.0) == {"a": 20.0, "b": 2.0, "done": 0.0}


def test_interacting_agents_take_min_of_action_and_meeting_time() -> None:
    # range 2, speed 1: two agents close a gap at 2 per time unit.
    estimator = InteractingAgents(interaction_range=2.0, max_velocity=1.0)
    world = [
        SpatialAgent("a", 0.0, 0.0, action_end=100.0),
        SpatialAgent("b", 6.0, 8.0, action_end=3.0),  # 10 from a: meets a after (10-2)/2 = 4
        SpatialAgent("c", 140.0, 0.0, action_end=50.0),  # over 134 from a and b
        SpatialAgent("sleeper", 1.0, 0.0, action_end=70.0, interactive=False),
    ]
    assert estimator.estimate(world, 0.0) == {
        "a": 4.0,  # the sleeper at 1.0 cannot interact
        "b": 3.0,  # its action ends before a can reach it
        "c": 50.0,
        "sleeper": 70.0,  # cannot be interrupted
    }


def test_agents_already_in_range_are_at_distance_zero() -> None:
    estimator = InteractingAgents(interaction_range=5.0, max_velocity=1.0)
    world = [SpatialAgent("a", 0.0, 0.0, 9.0), SpatialAgent("b", 3.0, 4.0, 9.0)]
    assert estimator.estimate(world, 0.0) == {"a": 0.0, "b": 0.0}


def test_activation_paths_count_hops_from_the_frontier() -> None:
    followers = {"src": ["b", "c"], "b": ["d", "src"], "c": ["d"], "d": ["e"], "x": ["y"]}
    world = ActivationState(followers=followers, frontier={"src", "c"}, done={"e"})
    assert ActivationPaths(hop_delay=3.0).estimate(world, 0.0) == {
        "src": 0.0,
        "c": 0.0,
        "b": 3.0,
        "d": 3.0,  # via c, which is already on the frontier
    }  # e already acted; x and y are unreachable: no estimate


RULES = MetropolisRules(radius_p=1.0, max_velocity=1.0)


def test_metropolis_coupled_needs_same_step_and_radius_plus_velocity() -> None:
    a = StepAgent("a", 5, 0.0, 0.0, 0.0)
    assert RULES.coupled(a, StepAgent("b", 5, 2.0, 0.0, 0.0))  # 2 <= 1 + 1
    assert not RULES.coupled(a, StepAgent("b", 5, 2.1, 0.0, 0.0))
    assert not RULES.coupled(a, StepAgent("b", 4, 1.0, 0.0, 0.0))  # different steps


def test_metropolis_blocked_only_by_a_lagging_neighbour_within_reach() -> None:
    ahead = StepAgent("a", 5, 0.0, 0.0, 0.0)
    lagging = StepAgent("b", 3, 3.0, 4.0, 0.0)  # 5 away; reach = (5-3+1)*1 + 1 = 4
    assert not RULES.blocked_by(ahead, lagging)
    closer = StepAgent("b", 3, 0.0, 4.0, 0.0)  # 4 away: blocked
    assert RULES.blocked_by(ahead, closer)
    assert not RULES.blocked_by(closer, ahead)  # the laggard is never blocked by it


def test_out_of_order_distance_grows_by_lag_across_coupled_group() -> None:
    world = [
        StepAgent("a", 5, 0.0, 0.0, action_end=2.0),
        StepAgent("b", 3, 4.0, 0.0, action_end=0.0),  # blocks a (4 <= 4) with lag 2
        StepAgent("c", 5, -1.5, 0.0, action_end=1.0),  # 5.5 from b, but coupled with a
        StepAgent("d", 5, -20.0, 0.0, action_end=1.0),  # far from everyone
    ]
    estimator = OutOfOrderAgents(RULES, step_duration=10.0)
    assert estimator.estimate(world, 0.0) == {"a": 22.0, "b": 0.0, "c": 21.0, "d": 1.0}


def test_estimator_parameters_are_validated() -> None:
    with pytest.raises(InvalidEntryError):
        ActivationPaths(hop_delay=0.0)
    with pytest.raises(InvalidEntryError):
        InteractingAgents(interaction_range=1.0, max_velocity=math.nan)
    with pytest.raises(InvalidEntryError):
        OutOfOrderAgents(RULES, step_duration=-1.0)


def _spatial_world(rng: random.Random) -> list[SpatialAgent]:
    return [
        SpatialAgent(f"s{i}", rng.uniform(0, 50), rng.uniform(0, 50), rng.uniform(0, 30))
        for i in range(40)
    ]


def _step_world(rng: random.Random) -> list[StepAgent]:
    return [
        StepAgent(f"m{i}", rng.randint(0, 4), rng.uniform(0, 20), rng.uniform(0, 20), 3.0)
        for i in range(40)
    ]


def _activation_world(rng: random.Random) -> ActivationState:
    followers = {f"u{i}": [f"u{rng.randrange(40)}" for _ in range(3)] for i in range(40)}
    return ActivationState(followers=followers, frontier={"u0", "u7"}, done={"u3"})


def _shuffled(world: Any, rng: random.Random) -> Any:
    if isinstance(world, ActivationState):
        edges = list(world.followers.items())
        rng.shuffle(edges)
        followers = {agent: rng.sample(list(out), len(out)) for agent, out in edges}
        frontier = rng.sample(list(world.frontier), len(world.frontier))
        return ActivationState(followers, frontier, world.done)
    items = list(world)
    rng.shuffle(items)
    return items


CASES: list[tuple[DistanceEstimator[Any], Callable[[random.Random], Any]]] = [
    (IndependentAgents(), lambda rng: [ActionState(f"i{n}", rng.uniform(0, 9)) for n in range(9)]),
    (InteractingAgents(interaction_range=3.0, max_velocity=0.5), _spatial_world),
    (ActivationPaths(hop_delay=2.0), _activation_world),
    (OutOfOrderAgents(RULES, step_duration=4.0), _step_world),
]


@pytest.mark.parametrize(("estimator", "make_world"), CASES)
def test_estimator_contract(
    estimator: DistanceEstimator[Any], make_world: Callable[[random.Random], Any]
) -> None:
    """Finite distances >= 0 for valid ids, independent of input order, accepted by the table."""
    rng = random.Random(3)
    world = make_world(rng)
    distances: Mapping[str, float] = estimator.estimate(world, 1.0)
    assert distances
    for agent, distance in distances.items():
        assert check_id(agent) == agent
        assert math.isfinite(distance) and distance >= 0.0
    assert dict(estimator.estimate(_shuffled(world, rng), 1.0)) == dict(distances)
    table = DistanceTable()
    assert table.update_batch(distances, now=1.0, source=Source.ESTIMATE) == len(distances)


def test_contract_covers_every_estimator() -> None:
    covered: Sequence[type] = [type(estimator) for estimator, _ in CASES]
    assert set(covered) == {IndependentAgents, InteractingAgents, ActivationPaths, OutOfOrderAgents}
