"""``scalesim bench live`` settings: which runs a command line asks for, in which order, their
keys, which of repeated runs is reported, and the replay prediction's granularity."""

from __future__ import annotations

import pytest
from scalesim.bench.live.document import PolicyRun
from scalesim.bench.live.driver import CallOutcome, Reply
from scalesim.bench.live.report import LivePolicyResult, comparison, replay_policy_of
from scalesim.bench.live.run import median_run, run_name
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


def test_repeats_alternate_the_order_of_the_runs() -> None:
    params = LiveParams(policies=("stock", "scalesim"), memory_ratio=0.25, repeats=3)
    assert [run_name(*run) for run in params.schedule()] == [
        "stock",
        "scalesim",
        "scalesim",
        "stock",
        "stock",
        "scalesim",
    ]
    assert LiveParams(policies=("stock",), memory_ratio=0.25).schedule() == (("stock", None),)


@pytest.mark.parametrize("repeats", [0, -2])
def test_fewer_than_one_repeat_is_refused(repeats: int) -> None:
    with pytest.raises(ValueError, match="repeats"):
        LiveParams(policies=("stock",), memory_ratio=0.25, repeats=repeats)


def _result(makespan_s: float, recomputed: int = 100) -> LivePolicyResult:
    return LivePolicyResult(
        requests=4,
        errors=0,
        prompt_tokens=400,
        cached_tokens=400 - recomputed,
        completion_tokens=4,
        expected_prompt_tokens=400,
        makespan_s=makespan_s,
        p50_latency_s=0.1,
        p99_latency_s=0.2,
        kv_prefetch_tokens=0,
        lora_loads_blocking=None,
        ticks=0,
        tick_errors=0,
        startup_s=1.0,
    )


@pytest.mark.parametrize(
    ("makespans", "median"),
    [([5.0], 5.0), ([9.0, 3.0, 6.0], 6.0), ([9.0, 3.0, 6.0, 7.0], 6.0), ([4.0, 2.0], 2.0)],
)
def test_the_reported_run_is_the_median_one(makespans: list[float], median: float) -> None:
    made = [
        PolicyRun(_result(t), (CallOutcome(0, 0.0, 0.0, t, Reply(400, 300, 1)),)) for t in makespans
    ]
    run = median_run(made)
    assert run.result.makespan_s == median and run.timeline() == [median]


def test_the_comparison_shows_every_repeat_in_run_order() -> None:
    document = {
        "results": {
            "stock": {**_result(12.0).as_json(), "makespans_s": [12.0, 10.0, 15.0]},
            "scalesim": {**_result(8.0, 50).as_json(), "makespans_s": [8.0, 5.0, 10.0]},
        },
        "replay_prediction": {"results": {}},
    }
    lines = comparison(document)
    assert lines[0].startswith("live: ScaleSim recomputed 0.50x") and "1.50x as fast" in lines[0]
    assert lines[1].endswith("12.0 / 8.0 s = 1.50x, 10.0 / 5.0 s = 2.00x, 15.0 / 10.0 s = 1.50x")
    document["results"]["stock"]["makespans_s"] = [12.0]
    document["results"]["scalesim"]["makespans_s"] = [8.0]
    assert len(comparison(document)) == 1
