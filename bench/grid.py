"""The policy-quality grid: one trace at one memory ratio, every mode and host ratio.

Who calls it: ``scalesim bench grid`` (``cli.py``). Issue 10's targets are per cell (lockstep
and out of order, host ratio 0 / 0.5 / 1.0): ScaleSim's excess recompute (recomputed minus
``infinite``'s: what finite memory costs) as a multiple of Belady's and of LRU's, and a host
tier that never makes ScaleSim recompute more than none. ``infinite`` never evicts, so it
runs once per mode; every other policy once per cell. Writes JSON, a markdown table and a
PNG; prints each cell as it finishes.

A benchmark: it prints and writes results, never asserts.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import report
from .replay.policies import INFINITE
from .replay.result import Mode, PolicyResult, ReplayConfig
from .sweep import results_json
from .trace import Trace

Replay = Callable[[Trace, list[str], ReplayConfig], dict[str, PolicyResult]]


def run_grid(
    trace: Trace,
    config: ReplayConfig,
    *,
    modes: Sequence[Mode],
    host_ratios: Sequence[float],
    policies: Sequence[str],
    replay: Replay,
) -> dict[str, Any]:
    """Replay every (mode, host ratio) cell; returns the JSON document's ``cells``."""
    cells: list[dict[str, Any]] = []
    for mode in modes:
        floor: PolicyResult | None = None
        for host in host_ratios:
            started = time.perf_counter()
            todo = [p for p in policies if p != INFINITE or floor is None]
            results = replay(trace, todo, replace(config, mode=mode, host_ratio=host))
            floor = results.get(INFINITE, floor)
            if floor is not None:
                results[INFINITE] = floor
            cell: dict[str, Any] = {
                "mode": mode.value,
                "host_ratio": host,
                "wall_s": round(time.perf_counter() - started, 1),
                "results": results_json(results),
            }
            cell["excess"] = excess_ratios(cell["results"])
            print(_line(cell), file=sys.stderr, flush=True)
            cells.append(cell)
    return {"cells": cells}


def excess_ratios(results: dict[str, dict[str, int | float]]) -> dict[str, float | None]:
    """ScaleSim's excess recompute in multiples of Belady's and LRU's (None: not replayed)."""
    if INFINITE not in results or "scalesim" not in results:
        return {"vs_belady": None, "vs_lru": None}
    floor = results[INFINITE]["recomputed_tokens"]
    ours = results["scalesim"]["recomputed_tokens"] - floor
    out: dict[str, float | None] = {}
    for name, key in (("belady", "vs_belady"), ("lru", "vs_lru")):
        theirs = results[name]["recomputed_tokens"] - floor if name in results else None
        out[key] = round(ours / max(1, theirs), 3) if theirs is not None else None
    return out


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _line(cell: dict[str, Any]) -> str:
    excess = cell["excess"]
    return (
        f"{cell['mode']:>8} host {cell['host_ratio']:<4} ScaleSim excess "
        f"{_ratio(excess['vs_belady'])}x Belady, {_ratio(excess['vs_lru'])}x LRU "
        f"({cell['wall_s']} s)"
    )


def markdown(document: dict[str, Any], title: str) -> str:
    """One row per cell: recomputed tokens per policy and ScaleSim's excess ratios; a last
    column says whether the cell's host tier made ScaleSim recompute more than no host."""
    cells = document["cells"]
    policies = list(cells[0]["results"]) if cells else []
    without = {
        cell["mode"]: cell["results"]["scalesim"]["recomputed_tokens"]
        for cell in cells
        if cell["host_ratio"] == 0 and "scalesim" in cell["results"]
    }
    settings = [f"- {key}: `{json.dumps(document[key])}`" for key in ("trace", "params", "machine")]
    head = " | ".join(f"{p} recomputed" for p in policies)
    rows = []
    for cell in cells:
        results = cell["results"]
        ours = results.get("scalesim", {}).get("recomputed_tokens")
        baseline = without.get(cell["mode"])
        worse = "-" if ours is None or baseline is None else ("yes" if ours > baseline else "no")
        counts = " | ".join(str(results[p]["recomputed_tokens"]) for p in policies)
        excess = cell["excess"]
        rows.append(
            f"| {cell['mode']} | {cell['host_ratio']} | {counts} | "
            f"{_ratio(excess['vs_belady'])} | {_ratio(excess['vs_lru'])} | {worse} |"
        )
    return "\n".join(
        [
            f"# {title}",
            "",
            *settings,
            "",
            "Excess = recomputed minus infinite's. Last column: ScaleSim recomputes more with "
            "this host tier than with none (same mode).",
            "",
            f"| mode | host ratio | {head} | ScaleSim / Belady excess | ScaleSim / LRU excess "
            "| host made it worse |",
            "|---|---:|" + "---:|" * len(policies) + "---:|---:|---|",
            *rows,
            "",
        ]
    )


def write(document: dict[str, Any], stem: Path) -> None:
    """``stem``.json, .md and .png."""
    report.write(document, stem, markdown=markdown, plot=plot)


def plot(document: dict[str, Any], path: Path, *, title: str) -> None:
    """Excess recompute per cell, one bar per policy (``infinite`` is the zero line)."""
    plt = report.pyplot()
    cells = document["cells"]
    policies = [p for p in (cells[0]["results"] if cells else {}) if p != INFINITE]
    labels = [f"{cell['mode']}\nhost {cell['host_ratio']}" for cell in cells]
    width = 0.8 / max(1, len(policies))
    figure, axes = plt.subplots(figsize=(max(6, 1.5 * len(cells)), 4))
    for index, policy in enumerate(policies):
        heights = [
            cell["results"][policy]["recomputed_tokens"]
            - cell["results"].get(INFINITE, {}).get("recomputed_tokens", 0)
            for cell in cells
        ]
        positions = [i + index * width for i in range(len(cells))]
        axes.bar(positions, heights, width, label=policy)
    axes.set_xticks([i + width * (len(policies) - 1) / 2 for i in range(len(cells))], labels)
    axes.set(ylabel="excess recomputed tokens (minus infinite's)", title=title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
