"""Overhead of the distance core and the incremental memory index.

Measures, on synthetic pools: (1) the cost of one scheduler step's planning at
10,000 agents and 100,000 resources (new distances for the agents that just called,
the eviction order that makes room for their host-resident state, and a prefetch
plan), (2) the cost of applying that step's moves to the index, and (3) the per-
operation cost of updating one agent and popping one victim as the pool grows, to
show the O(log n) scaling. A benchmark: it prints and writes results, never asserts.

Run: ``PYTHONPATH=. python bench/overhead.py [--agents N --resources N --steps N]``
Writes ``bench/results/overhead.json`` and ``overhead.md`` (or ``--out-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from scalesim.distance import DistanceTable
from scalesim.memory import MemoryPlanner, Resource, ResourceIndex, Tier

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclasses.dataclass(frozen=True)
class Pool:
    table: DistanceTable
    index: ResourceIndex
    by_agent: dict[str, list[str]]  # private resource keys of each agent
    rng: random.Random


def build_pool(agents: int, resources: int, *, seed: int) -> Pool:
    """Agents with private resources (60% on device), one system prompt shared by all,
    and 1% group prefixes shared by 2-8 agents. The pool is then frozen out of the
    cyclic garbage collector, as a long-lived server pool would be."""
    rng = random.Random(seed)
    table = DistanceTable(horizon=1_000.0)
    names = [f"agent{number}" for number in range(agents)]
    table.update_batch({name: rng.uniform(0.0, 500.0) for name in names}, now=0.0)
    index = ResourceIndex(table)
    by_agent: dict[str, list[str]] = {name: [] for name in names}
    index.add(Resource("system", tuple(names), 1 << 20, Tier.DEVICE, 0.0, pinned=True), now=0.0)
    shared = resources // 100
    for number in range(1, resources):
        if number <= shared:
            owners = tuple(rng.sample(names, min(agents, rng.randint(2, 8))))
        else:
            owners = (names[number % agents],)
            by_agent[owners[0]].append(f"r{number}")
        tier = Tier.DEVICE if rng.random() < 0.6 else Tier.HOST
        size = rng.choice((16, 32, 64, 128)) * 4096
        index.add(Resource(f"r{number}", owners, size, tier, -rng.random()), now=0.0)
    gc.collect()
    gc.freeze()
    return Pool(table, index, by_agent, rng)


class StepTimes(NamedTuple):
    hints_ns: int  # new distances for the callers (request path), incl. re-ranking
    evict_ns: int  # eviction order making room for the callers' host state
    prefetch_ns: int  # prefetch plan
    plan_cpu_ns: int  # this thread's CPU time for both plans: wall time minus preemption
    apply_ns: int  # moving the records in the index (bookkeeping, not planning)


def scheduler_step(pool: Pool, *, now: float, calls: int) -> StepTimes:
    """One step: ``calls`` agents called; plan room for their state, then apply it."""
    callers = pool.rng.sample(sorted(pool.by_agent), calls)
    hints = {agent: pool.rng.uniform(1.0, 500.0) for agent in callers}
    used = [pool.index.get(key) for agent in callers for key in pool.by_agent[agent]]
    needed = sum(item.size_bytes for item in used if item is not None and item.tier is Tier.HOST)
    start = time.perf_counter_ns()
    pool.table.update_batch(hints, now=now)
    hinted = time.perf_counter_ns()
    cpu_start = time.thread_time_ns()
    eviction = pool.index.eviction_order(tier=Tier.DEVICE, n_bytes=needed, now=now)
    evicted = time.perf_counter_ns()
    prefetch = pool.index.prefetch_plan(
        now=now, window=20.0, budget_bytes=16 << 20, device_free_bytes=4 << 20
    )
    planned = time.perf_counter_ns()
    plan_cpu_ns = time.thread_time_ns() - cpu_start
    for key in eviction.keys:
        victim = pool.index.remove(key)
        pool.index.add(dataclasses.replace(victim, tier=Tier.HOST), now=now)
    for item in used:
        if item is not None:
            moved = dataclasses.replace(item, tier=Tier.DEVICE, last_use=now)
            pool.index.update(moved, now=now)
    del prefetch  # planned only: a real runtime would issue these copies
    apply_ns = time.perf_counter_ns() - planned
    return StepTimes(hinted - start, evicted - hinted, planned - evicted, plan_cpu_ns, apply_ns)


def per_op_ns(pool: Pool, *, repeats: int) -> tuple[float, float]:
    """Mean ns to update one agent's distance, and to pop one device victim."""
    agents = sorted(pool.by_agent)
    picks = [pool.rng.choice(agents) for _ in range(repeats)]
    values = [pool.rng.uniform(1.0, 500.0) for _ in range(repeats)]
    start = time.perf_counter_ns()
    for agent, value in zip(picks, values, strict=True):
        pool.table.update(agent, value, now=1.0)
    update_ns = (time.perf_counter_ns() - start) / repeats
    start = time.perf_counter_ns()
    for _ in range(repeats):
        pool.index.pop_victim(Tier.DEVICE, now=1.0)
    return update_ns, (time.perf_counter_ns() - start) / repeats


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    action()
    return (time.perf_counter_ns() - start) / 1e6


def percentiles_ms(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    pick = lambda share: ordered[min(len(ordered) - 1, int(share * len(ordered)))]  # noqa: E731
    return {
        "median_ms": statistics.median(ordered) / 1e6,
        "p90_ms": pick(0.9) / 1e6,
        "p99_ms": pick(0.99) / 1e6,
        "max_ms": ordered[-1] / 1e6,
    }


def load_average() -> str:
    """The 1-minute load average: on a shared machine, read timings against it."""
    return f"{os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""


def machine() -> dict[str, str]:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "logical_cpus": str(os.cpu_count()),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average_1m_at_end": load_average(),
    }


def run(args: argparse.Namespace) -> dict[str, object]:
    load_at_start = load_average()
    pool = build_pool(args.agents, args.resources, seed=args.seed)
    steps = [scheduler_step(pool, now=1.0 + step, calls=args.calls) for step in range(args.steps)]
    snapshot = [item for key in sorted(pool.by_agent) for item in _records(pool, key)]
    planner = MemoryPlanner(pool.table)
    snapshot_ms = timed(
        lambda: planner.eviction_order(snapshot, tier=Tier.DEVICE, n_bytes=1 << 24, now=9e3)
    )
    scaling = []
    for size in args.scaling:
        small = build_pool(max(size // 10, 1), size, seed=args.seed)
        update_ns, pop_ns = per_op_ns(small, repeats=min(2_000, size // 4))
        scaling.append(
            {"resources": size, "update_agent_us": update_ns / 1e3, "pop_us": pop_ns / 1e3}
        )
    return {
        "config": vars(args) | {"out_dir": str(args.out_dir)},
        "machine": machine() | {"load_average_1m_at_start": load_at_start},
        "step": {
            "hints": percentiles_ms([item.hints_ns for item in steps]),
            "eviction_plan": percentiles_ms([item.evict_ns for item in steps]),
            "prefetch_plan": percentiles_ms([item.prefetch_ns for item in steps]),
            "plan_total": percentiles_ms([item.evict_ns + item.prefetch_ns for item in steps]),
            "plan_total_cpu": percentiles_ms([item.plan_cpu_ns for item in steps]),
            "hints_and_plan": percentiles_ms(
                [item.hints_ns + item.evict_ns + item.prefetch_ns for item in steps]
            ),
            "apply": percentiles_ms([item.apply_ns for item in steps]),
        },
        "snapshot_planner_ms": snapshot_ms,
        "snapshot_resources": len(snapshot),
        "scaling": scaling,
    }


def _records(pool: Pool, agent: str) -> list[Resource]:
    found = (pool.index.get(key) for key in pool.by_agent[agent])
    return [item for item in found if item is not None]


def render(result: dict[str, object]) -> str:
    """The Markdown report (also printed)."""
    config = result["config"]
    assert isinstance(config, dict)
    step = result["step"]
    assert isinstance(step, dict)
    lines = [
        "# Distance core overhead",
        "",
        f"Machine: {json.dumps(result['machine'])}",
        f"Pool: {config['agents']} agents, {config['resources']} resources; "
        f"{config['steps']} steps of {config['calls']} calls each; "
        "plan_total = eviction_plan + prefetch_plan (wall); plan_total_cpu: the same, "
        "this thread's CPU time only.",
        "",
        "| per scheduler step | median ms | p90 ms | p99 ms | max ms |",
        "|---|---|---|---|---|",
    ]
    for name, row in step.items():
        lines.append(
            f"| {name} | {row['median_ms']:.3f} | {row['p90_ms']:.3f} "
            f"| {row['p99_ms']:.3f} | {row['max_ms']:.3f} |"
        )
    lines += [
        "",
        f"Snapshot MemoryPlanner.eviction_order over {result['snapshot_resources']} "
        f"private resources: {result['snapshot_planner_ms']:.1f} ms (O(n), for reference).",
        "",
        "| resources | update one agent (us) | pop one victim (us) |",
        "|---|---|---|",
    ]
    scaling = result["scaling"]
    assert isinstance(scaling, list)
    for row in scaling:
        lines.append(f"| {row['resources']} | {row['update_agent_us']:.2f} | {row['pop_us']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--resources", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=300, help="scheduler steps to time")
    parser.add_argument("--calls", type=int, default=16, help="agents calling per step")
    parser.add_argument("--scaling", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    result = run(args)
    report = render(result)
    print(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out_dir / "overhead.md").write_text(report)


if __name__ == "__main__":
    main()
