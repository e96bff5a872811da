"""The adapter-slot sweep: blocking adapter loads and makespan as GPU adapter slots grow.

Who calls it: ``scalesim bench adapters`` (``cli.py``). One trace with adapters (``gen
--loras``: one adapter per agent) is replayed once per slot count under ``lru`` (stock
SGLang's adapter eviction), ``scalesim`` (slots by distance, adapters of due agents
prefetched) and ``belady`` (slots by true next use, no prefetch), at one KV memory ratio.
Issue 11's target is on the blocking loads (a call waits for its adapter) at slots for ~10%
of the agents, so the sweep reports them, the prefetches that replaced them, and the
modelled makespan, each as a multiple of LRU's; the seconds blocking loads themselves add
(``blocking x adapter_load_s``) separate the adapters' share of the makespan from the KV
cache's (every policy also evicts KV by its own ranking).

A benchmark: it prints and writes results, never asserts (``tests/bench/test_adapter_sweep.py``
holds the properties). The document is plain JSON so that the markdown and the PNG can be
redrawn from a written file alone.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import report
from .replay.engine import replay_policies
from .replay.result import PolicyResult, ReplayConfig
from .trace import Trace

DEFAULT_POLICIES = "lru,scalesim,belady"
DEFAULT_SLOTS = "15,30,60"
_BASELINE = "lru"


@dataclass(frozen=True)
class SlotRun:
    """Every policy's result at one slot count, and the replay's wall time."""

    lora_slots: int
    results: dict[str, PolicyResult]
    wall_s: float


def parse_slots(text: str) -> list[int]:
    """``"15,30,60"`` -> ``[15, 30, 60]`` (sorted, distinct); every count must be >= 1."""
    slots = sorted({int(item) for item in text.split(",") if item.strip()})
    if not slots or slots[0] < 1:
        raise ValueError(f"--slots needs counts >= 1, got {text!r}")
    return slots


def run_sweep(
    trace: Trace,
    config: ReplayConfig,
    slots: list[int],
    *,
    policies: list[str],
    progress: bool = False,
) -> list[SlotRun]:
    """Replay ``trace`` under every policy once per slot count (``config.lora_slots`` ignored).

    Args:
        trace: a trace whose calls name adapters (``gen --loras``).
        config: the replay settings shared by every run (memory ratio, host ratio, cost).
        slots: GPU adapter slot counts, one replay of every policy each.
        policies: policy names as ``replay_policies`` takes them.
        progress: a tqdm bar per policy run on stderr.
    """
    runs = []
    for n_slots in slots:
        started = time.perf_counter()
        results = replay_policies(
            trace, policies, replace(config, lora_slots=n_slots), progress=progress
        )
        run = SlotRun(n_slots, results, round(time.perf_counter() - started, 1))
        print(_progress_line(run, trace.header.agents), file=sys.stderr, flush=True)
        runs.append(run)
    return runs


def sweep_json(runs: list[SlotRun]) -> dict[str, Any]:
    """The document's body: per slot count, every policy's ``as_json`` and its LRU ratios."""
    return {
        "slots": [
            {
                "lora_slots": run.lora_slots,
                "results": {name: result.as_json() for name, result in run.results.items()},
                "over_lru": _over_lru(run.results),
            }
            for run in runs
        ]
    }


def _over_lru(results: dict[str, PolicyResult]) -> dict[str, dict[str, float | None]]:
    """Blocking loads and makespan of each policy / LRU's (None: no LRU or LRU is zero)."""
    base = results.get(_BASELINE)
    ratios: dict[str, dict[str, float | None]] = {}
    for name, result in results.items():
        blocking = makespan = None
        if base is not None and base.blocking_adapter_loads > 0:
            blocking = round(result.blocking_adapter_loads / base.blocking_adapter_loads, 3)
        if base is not None and base.makespan_s > 0:
            makespan = round(result.makespan_s / base.makespan_s, 4)
        ratios[name] = {"blocking_adapter_loads": blocking, "makespan_s": makespan}
    return ratios


def _progress_line(run: SlotRun, agents: int) -> str:
    cells = "  ".join(
        f"{name} {result.blocking_adapter_loads} blocking / {result.makespan_s:.1f} s"
        for name, result in run.results.items()
    )
    share = f"{run.lora_slots / agents:.0%} of agents, {run.wall_s} s"
    return f"{run.lora_slots:>5} slots ({share})  {cells}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(document: dict[str, Any]) -> str:
    """One markdown row per slot count and policy: loads, recompute, makespan, / LRU."""
    agents = document["trace"]["agents"]
    load_s = document["params"]["cost_model"]["adapter_load_s"]
    rows = [
        "| slots | % of agents | policy | blocking loads | prefetched | blocking load s "
        "| recomputed tokens (M) | makespan s | blocking / LRU | makespan / LRU |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in document["slots"]:
        n_slots = entry["lora_slots"]
        for name, result in entry["results"].items():
            ratio = entry["over_lru"][name]
            blocking = result["blocking_adapter_loads"]
            rows.append(
                f"| {n_slots} | {n_slots / agents:.0%} | {name} | {blocking:,} | "
                f"{result['prefetch_adapter_loads']:,} | {blocking * load_s:.2f} | "
                f"{result['recomputed_tokens'] / 1e6:.3f} | {result['makespan_s']:.1f} | "
                f"{_ratio(ratio['blocking_adapter_loads'])} | {_ratio(ratio['makespan_s'])} |"
            )
    return "\n".join(rows)


def markdown(document: dict[str, Any], title: str) -> str:
    """The run's settings, then the table (``blocking load s`` = blocking x adapter_load_s)."""
    settings = [f"- {key}: `{json.dumps(document[key])}`" for key in ("trace", "params", "machine")]
    return "\n".join(
        [
            f"# {title}",
            "",
            *settings,
            "",
            "Blocking adapter loads (a call waits for its adapter), adapters prefetched ahead of "
            "their calls, the seconds the blocking loads add to the makespan (blocking x "
            "`adapter_load_s`), and the modelled makespan, per GPU adapter slot count:",
            "",
            table(document),
            "",
        ]
    )


def write(document: dict[str, Any], stem: Path) -> None:
    """``stem``.json, .md and .png."""
    report.write(document, stem, markdown=markdown, plot=plot)


def plot(document: dict[str, Any], path: Path, *, title: str) -> None:
    """Blocking loads (prefetches dashed) and makespan against slots, one line per policy."""
    plt = report.pyplot()
    slots = [entry["lora_slots"] for entry in document["slots"]]
    policies = list(document["slots"][0]["results"])
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in policies:
        results = [entry["results"][name] for entry in document["slots"]]
        (line,) = left.plot(
            slots, [r["blocking_adapter_loads"] for r in results], "o-", label=f"{name} blocking"
        )
        prefetched = [r["prefetch_adapter_loads"] for r in results]
        if any(prefetched):
            left.plot(slots, prefetched, "x--", color=line.get_color(), label=f"{name} prefetched")
        right.plot(slots, [r["makespan_s"] for r in results], "o-", label=name)
    for axes in (left, right):
        axes.set_xticks(slots, [str(n) for n in slots])
    left.set_ylim(0, left.get_ylim()[1] * 1.35)  # room above the lines for the legend
    left.set(xlabel="GPU adapter slots", ylabel="adapter loads", title=title)
    right.set(xlabel="GPU adapter slots", ylabel="modelled makespan (s)", title=title)
    left.legend(loc="upper center", ncols=2, fontsize="small")
    right.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
