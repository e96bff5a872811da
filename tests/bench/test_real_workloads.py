"""Workloads from real data (``village``, ``social``): valid, deterministic traces whose
per-agent timing follows the data, with hints that are estimates, not the true next calls.

The data sets live outside the repository (``shared/data`` beside the checkout, or
``$SCALESIM_DATA_DIR``); tests that need one skip when it is absent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pytest
from scalesim.bench.cli import main as bench_main
from scalesim.bench.exact_hints import exact_hints
from scalesim.bench.hint_quality import hint_errors
from scalesim.bench.trace import Call, Trace, read_trace, write_trace
from scalesim.bench.workloads import REAL_WORKLOADS, generate, real_data, social
from scalesim.bench.workloads.common import DAY_STEPS
from scalesim.bench.workloads.social_activity import (
    HOUR_STEPS,
    activation_steps,
    expected_wait_steps,
)
from scalesim.bench.workloads.social_data import RealCascade, load_social
from scalesim.bench.workloads.village_data import load_village

_DATASETS = {"village": real_data.GENERATIVE_AGENTS, "social": real_data.OASIS}
NAMES = sorted(REAL_WORKLOADS)
AGENTS = 30
STEPS = 6000  # past the replay's first conversations (step 3574) and the day's busy hours


def _needs(workload: str) -> pytest.MarkDecorator:
    dataset = _DATASETS[workload]
    return pytest.mark.skipif(
        not real_data.has_dataset(None, dataset),
        reason=f"data set {dataset!r} not under {real_data.default_data_dir()}",
    )


WITH_DATA = [pytest.param(name, marks=_needs(name)) for name in NAMES]


def _trace(workload: str, *, agents: int = AGENTS, steps: int = STEPS, seed: int = 3) -> Trace:
    return generate(workload, agents=agents, steps=steps, seed=seed)


def _calls_by_agent(trace: Trace) -> dict[str, list[Call]]:
    by_agent: dict[str, list[Call]] = defaultdict(list)
    for call in trace.calls:
        by_agent[call.agent].append(call)
    return by_agent


@pytest.mark.parametrize("workload", WITH_DATA)
def test_trace_is_valid_and_reads_back(tmp_path: Path, workload: str) -> None:
    """The trace passes the trace validator (order, ids, deps, agent count) unchanged."""
    trace = _trace(workload)
    path = tmp_path / "t.jsonl"
    write_trace(path, trace)
    assert read_trace(path) == trace
    assert trace.header.agents == AGENTS
    assert len({event.agent for event in trace.events}) == AGENTS
    assert trace.calls and trace.hints
    assert all(0 <= event.step < STEPS for event in trace.events)


@pytest.mark.parametrize("workload", WITH_DATA)
def test_same_seed_same_bytes_other_seed_other_trace(tmp_path: Path, workload: str) -> None:
    paths = [tmp_path / f"{seed}-{n}.jsonl" for n, seed in enumerate((5, 5, 6))]
    for path, seed in zip(paths, (5, 5, 6), strict=True):
        write_trace(path, _trace(workload, seed=seed))
    first, again, other = (path.read_bytes() for path in paths)
    assert first == again
    assert first != other


@pytest.mark.parametrize("workload", WITH_DATA)
def test_each_agent_reuses_its_persona_prefix_and_deps_are_never_later(workload: str) -> None:
    trace = _trace(workload)
    for agent, calls in _calls_by_agent(trace).items():
        assert {call.prompt[:2] for call in calls} == {calls[0].prompt[:2]}, agent
        assert calls[0].prompt[1].seg == f"persona/{agent}"
    step_of = {call.id: call.step for call in trace.calls}
    edges = [(step_of[dep], call.step) for call in trace.calls for dep in call.deps]
    assert edges and all(dep_step <= step for dep_step, step in edges)


@pytest.mark.parametrize("workload", WITH_DATA)
def test_loras_name_the_agent(workload: str) -> None:
    trace = generate(workload, agents=6, steps=3000, seed=1, loras=True)
    assert trace.calls and all(call.lora == call.agent for call in trace.calls)


@pytest.mark.parametrize("workload", WITH_DATA)
def test_hints_are_estimates_not_the_true_next_calls(workload: str) -> None:
    """Hints differ from the exact next calls, yet resolve against real calls."""
    trace = _trace(workload, agents=60, steps=DAY_STEPS)
    errors = hint_errors(trace)
    assert set(trace.hints) != set(exact_hints(trace).hints)
    assert errors.resolved > len(trace.hints) // 2
    assert errors.mean_abs_steps > 0
    assert 0 < errors.exact_share < 1


@_needs("village")
def test_village_agents_call_when_the_replay_changes_action_or_speaks() -> None:
    """Agent a{3v+p} calls exactly at persona p's action changes and its conversation turns,
    all shifted by the village's one offset; planned ends hint the uninterrupted actions."""
    replay = load_village()
    trace = _trace("village", agents=6, steps=DAY_STEPS)
    by_agent = _calls_by_agent(trace)
    for village in range(2):
        shift = min(by_agent[f"a{3 * village}"][0].step, by_agent[f"a{3 * village + 1}"][0].step)
        for persona, entries in enumerate(replay.entries):
            expected = {shift + entry.step for entry in entries if not entry.conversing}
            for conversation in replay.conversations:
                duration = min(conversation.ends) - conversation.step
                turns = len(conversation.speakers)
                expected |= {
                    shift + conversation.step + turn * duration // turns
                    for turn, speaker in enumerate(conversation.speakers)
                    if speaker == persona
                }
            agent = f"a{3 * village + persona}"
            assert {call.step for call in by_agent[agent]} == {s for s in expected if s < DAY_STEPS}
    assert hint_errors(trace).exact_share > 0.5


@_needs("social")
def test_social_feed_reads_follow_the_hourly_profiles() -> None:
    """Feed reads (calls without a post) happen only in hours the real user was active, about
    as often as its profile says (summed over three tiles, within 5 Poisson sigmas)."""
    users = load_social().users
    agents = 3 * len(users)
    trace = _trace("social", agents=agents, steps=DAY_STEPS, seed=2)
    reads = [
        call for call in trace.calls if not any(s.seg.startswith("post/") for s in call.prompt)
    ]
    for call in reads:
        user = users[int(call.agent[1:]) % len(users)]
        assert user.hourly[call.step // HOUR_STEPS] > 0, call
    expected = 3 * social.ACTIVATIONS_PER_COUNT * sum(sum(user.hourly) for user in users)
    assert abs(len(reads) - expected) < 5 * math.sqrt(expected)


@_needs("social")
def test_social_cascades_keep_the_real_sizes_depths_and_timing() -> None:
    data = load_social()
    trace = _trace("social", agents=400, steps=DAY_STEPS, seed=1)
    post_of = {
        call.id: next(s.seg for s in call.prompt if s.seg.startswith("post/"))
        for call in trace.calls
        if any(s.seg.startswith("post/") for s in call.prompt)
    }
    by_post: dict[str, list[Call]] = defaultdict(list)
    depth: dict[str, int] = {}
    for call in trace.calls:
        if call.id in post_of:
            by_post[post_of[call.id]].append(call)
            depth[call.id] = 1 + max((depth[dep] for dep in call.deps), default=-1)
    longest = max(round(cascade.max_hours * HOUR_STEPS) for cascade in data.cascades)
    assert len(by_post) > 5
    assert max(len(calls) for calls in by_post.values()) >= min(c.users for c in data.cascades)
    for calls in by_post.values():
        assert len(calls) <= max(cascade.users for cascade in data.cascades)
        assert calls[-1].step - calls[0].step <= longest
        assert all(not call.deps or post_of[call.deps[0]] == post_of[call.id] for call in calls)
    assert max(depth.values()) <= max(cascade.depth for cascade in data.cascades)


def test_real_cascade_quantiles_keep_median_max_and_mean() -> None:
    cascade = RealCascade(users=300, depth=3, mean_hours=2.0, median_hours=1.8, max_hours=5.0)
    assert cascade.quantile_hours(0.5) == pytest.approx(1.8)
    assert cascade.quantile_hours(1.0) == pytest.approx(5.0)
    samples = 10_000
    mean = sum(cascade.quantile_hours((k + 0.5) / samples) for k in range(samples)) / samples
    assert mean == pytest.approx(2.0, rel=1e-3)


def test_expected_wait_is_the_poisson_expectation() -> None:
    """Rate r per hour everywhere: mean wait 1/r hours; a silent hour is waited out first."""
    assert expected_wait_steps([6.0] * 24, 17) == pytest.approx(HOUR_STEPS / 6)
    night = [0.0] + [6.0] * 23
    assert expected_wait_steps(night, 0) == pytest.approx(HOUR_STEPS + HOUR_STEPS / 6)
    assert expected_wait_steps([0.0] * 24, 0) is None


def test_activations_stay_in_active_hours() -> None:
    import random

    rates = [0.0] * 12 + [30.0] * 12
    found = activation_steps(rates, DAY_STEPS, random.Random(0))
    assert found == sorted(set(found))
    assert all(step >= 12 * HOUR_STEPS for step in found)
    assert abs(len(found) - 360) < 5 * math.sqrt(360)


def test_missing_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for workload in NAMES:
        with pytest.raises(FileNotFoundError, match="--data-dir"):
            generate(workload, agents=3, steps=10, seed=0, data_dir=tmp_path)
    argv = ["gen", "--workload", "village", "--agents", "3", "--steps", "10"]
    status = bench_main([*argv, "-o", str(tmp_path / "t.jsonl"), "--data-dir", str(tmp_path)])
    assert status == 2
    assert "SCALESIM_DATA_DIR" in capsys.readouterr().err


def test_default_data_dir_is_beside_the_checkout_or_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(real_data.DATA_DIR_ENV, raising=False)
    checkout = Path(real_data.__file__).resolve().parents[2]
    assert (checkout / "bench" / "workloads" / "real_data.py").is_file()
    assert real_data.default_data_dir() == checkout.parent / "shared" / "data"
    monkeypatch.setenv(real_data.DATA_DIR_ENV, str(tmp_path))
    assert real_data.default_data_dir() == tmp_path
