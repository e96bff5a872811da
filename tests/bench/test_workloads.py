"""Workload generators: determinism, valid traces, agent counts, shared per-agent prefixes."""

from __future__ import annotations

import itertools
from collections import defaultdict
from pathlib import Path

import pytest
from scalesim.bench.trace import Call, read_trace, write_trace
from scalesim.bench.workloads import WORKLOADS, generate

NAMES = sorted(WORKLOADS)
AGENTS = 40
STEPS = 4000  # past the wake-up (06:00-09:00) so town agents act and talk


def _write(tmp_path: Path, workload: str, *, seed: int, loras: bool = False) -> bytes:
    path = tmp_path / f"{workload}-{seed}-{loras}.jsonl"
    write_trace(path, generate(workload, agents=AGENTS, steps=STEPS, seed=seed, loras=loras))
    return path.read_bytes()


@pytest.mark.parametrize("workload", NAMES)
def test_same_seed_gives_identical_bytes(tmp_path: Path, workload: str) -> None:
    assert _write(tmp_path, workload, seed=5) == _write(tmp_path, workload, seed=5)


@pytest.mark.parametrize("workload", NAMES)
def test_different_seed_gives_different_trace(tmp_path: Path, workload: str) -> None:
    assert _write(tmp_path, workload, seed=5) != _write(tmp_path, workload, seed=6)


@pytest.mark.parametrize("workload", NAMES)
def test_trace_reads_back_valid_with_every_agent(tmp_path: Path, workload: str) -> None:
    path = tmp_path / "t.jsonl"
    trace = generate(workload, agents=AGENTS, steps=STEPS, seed=3)
    write_trace(path, trace)
    assert read_trace(path) == trace
    assert trace.header.agents == AGENTS
    assert len({event.agent for event in trace.events}) == AGENTS
    assert trace.calls and trace.hints
    assert all(call.step < STEPS for call in trace.calls)


@pytest.mark.parametrize("workload", NAMES)
def test_each_agent_calls_share_a_long_prefix(workload: str) -> None:
    """Every agent's calls start with the same system and persona segments."""
    by_agent: dict[str, list[Call]] = defaultdict(list)
    for call in generate(workload, agents=AGENTS, steps=STEPS, seed=3).calls:
        by_agent[call.agent].append(call)
    for agent, calls in by_agent.items():
        heads = {call.prompt[:2] for call in calls}
        assert len(heads) == 1, agent
        (head,) = heads
        assert head[1].seg == f"persona/{agent}"
        assert sum(segment.n_tokens for segment in head) >= 700


def test_memory_prefix_is_reused_between_growths() -> None:
    """Between memory growths, an agent's consecutive calls share system + persona + memory."""
    by_agent: dict[str, list[Call]] = defaultdict(list)
    for call in generate("town", agents=10, steps=STEPS, seed=2).calls:
        by_agent[call.agent].append(call)
    pairs = [(a, b) for own in by_agent.values() for a, b in itertools.pairwise(own)]
    repeats = sum(1 for first, second in pairs if first.prompt[:3] == second.prompt[:3])
    assert repeats > len(pairs) // 2
    assert repeats < len(pairs)


@pytest.mark.parametrize("workload", NAMES)
def test_loras_name_the_agent(workload: str) -> None:
    trace = generate(workload, agents=10, steps=500, seed=1, loras=True)
    assert all(call.lora == call.agent for call in trace.calls)
    plain = generate(workload, agents=10, steps=500, seed=1)
    assert all(call.lora is None for call in plain.calls)


#: Workloads whose calls wait on other calls (conversations, reposts, workflow DAG steps).
_WITH_DEPS = {"diffusion", "town", "workflow"}


@pytest.mark.parametrize("workload", NAMES)
def test_deps_come_before_and_not_later(workload: str) -> None:
    trace = generate(workload, agents=AGENTS, steps=STEPS, seed=4)
    step_of = {call.id: call.step for call in trace.calls}
    edges = [(step_of[dep], call.step) for call in trace.calls for dep in call.deps]
    assert bool(edges) == (workload in _WITH_DEPS)
    assert all(dep_step <= step for dep_step, step in edges)


def test_town_has_conversations_with_deps() -> None:
    trace = generate("town", agents=AGENTS, steps=STEPS, seed=3)
    assert any(call.deps for call in trace.calls)


def test_ten_thousand_agents(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    write_trace(path, generate("independent", agents=10_000, steps=30, seed=1))
    trace = read_trace(path)
    assert len({call.agent for call in trace.calls}) == 10_000


def test_unknown_workload_and_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown workload"):
        generate("mall", agents=1, steps=1, seed=0)
    with pytest.raises(ValueError, match="agents >= 1"):
        generate("town", agents=0, steps=1, seed=0)


def test_schedule_hints_are_estimates_early_and_late() -> None:
    """Scheduled agents' hints miss by slips and cancellations, on-call agents' by their random
    gaps: hints are neither exact nor all on one side of the truth."""
    trace = generate("schedule", agents=60, steps=4000, seed=2)
    steps: dict[str, list[int]] = {}
    for call in trace.calls:
        steps.setdefault(call.agent, []).append(call.step)
    errors = []
    for hint in trace.hints:
        later = [step for step in steps[hint.agent] if step > hint.step]
        if hint.next_step is not None and later:
            errors.append(later[0] - hint.next_step)
    assert sum(error > 0 for error in errors) > len(errors) / 5  # the call came later
    assert sum(error < 0 for error in errors) > len(errors) / 5  # the call came earlier
    assert sum(error == 0 for error in errors) < len(errors) / 2
