"""``scalesim bench live`` settings: which runs a command line asks for, their keys, and the
replay prediction's granularity."""

from __future__ import annotations

import pytest
from scalesim.bench.live.report import replay_policy_of
from scalesim.bench.live.run import run_name
from scalesim.bench.live.setup import LiveParams


def test_cluster_runs_are_every_policy_under_every_routing() -> None:
    params = LiveParams(
        policies=("stock", "scalesim"),
        memory_ratio=0.25,
        workers=2,
        routings=("affinity", "round_robin"),
    )
    assert [run_name(*run) for run in params.runs()] == [
        "stock+affinity",
        "stock+round_robin",
        "scalesim+affinity",
        "scalesim+round_robin",
    ]


def test_without_workers_one_plain_server_per_policy() -> None:
    params = LiveParams(policies=("stock", "scalesim"), memory_ratio=0.25)
    assert [run_name(*run) for run in params.runs()] == ["stock", "scalesim"]


@pytest.mark.parametrize(
    ("workers", "routings"),
    [(-1, ()), (2, ()), (2, ("sticky",)), (2, ("affinity", "affinity"))],
)
def test_bad_cluster_settings_are_refused(workers: int, routings: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"workers|routings"):
        LiveParams(policies=("scalesim",), memory_ratio=0.25, workers=workers, routings=routings)


def test_cluster_runs_are_predicted_by_their_policys_replay() -> None:
    assert replay_policy_of("stock+round_robin") == "lru"
    assert replay_policy_of("scalesim+affinity") == "scalesim"
    assert replay_policy_of("stock") == "lru"


def test_the_live_prediction_replays_at_the_servers_granularity() -> None:
    config = LiveParams(policies=("stock", "scalesim"), memory_ratio=0.75).replay_config()
    assert (config.token_scale, config.evict_headroom) == (1, 0.0)
