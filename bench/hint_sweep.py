"""The hint-quality sweep: ScaleSim against LRU and Belady as the hints get worse.

Who calls it: ``scalesim bench hints`` (``cli.py``). One trace is replayed once under ``lru``,
``belady`` and ``infinite`` (none of them reads hints), then under ``scalesim`` once per hint
level (``hint_noise.py``: the trace's own hints, the same with its nulls made exact, exact,
growing noise, biased by a steady factor, hints for half the agents only, random, adversarial),
with learned trust (the default) and, for comparison, with full trust in every hint. Excess
recompute (recomputed minus ``infinite``'s: what finite memory costs) is the figure of merit;
the sweep prints it as multiples of LRU's and Belady's, and writes JSON, a markdown table and a
PNG.

A benchmark: it prints and writes results, never asserts (``tests/bench/test_hint_noise.py``
holds the properties).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from scalesim.runtime import HintTrustMode

from . import report
from .hint_noise import with_hints
from .hint_quality import hint_errors
from .replay.engine import replay_policies
from .replay.result import PolicyResult, ReplayConfig
from .trace import Trace

DEFAULT_LEVELS = (
    "own,own-filled,"
    "exact,noise:0.1,noise:0.25,noise:0.5,noise:1,scale:0.5,scale:2,partial:0.5,random,adversarial"
)
_BASELINES = ("lru", "belady", "infinite")


@dataclass(frozen=True)
class LevelResult:
    """ScaleSim at one hint level: its excess recompute under each trust mode."""

    level: str
    mean_abs_error_steps: float
    learned_excess: int
    full_excess: int


def run_sweep(trace: Trace, config: ReplayConfig, levels: list[str]) -> dict[str, Any]:
    """Replay the baselines once and ScaleSim per level; returns the JSON document's body."""
    base = replay_policies(trace, list(_BASELINES), config)
    floor = base["infinite"].recomputed_tokens
    rows = []
    for level in levels:
        hinted = with_hints(trace, level)
        excess = {
            mode: _scalesim(hinted, replace(config, hint_trust=mode)).recomputed_tokens - floor
            for mode in HintTrustMode
        }
        row = LevelResult(
            level,
            round(hint_errors(hinted).mean_abs_steps, 2),
            excess[HintTrustMode.LEARNED],
            excess[HintTrustMode.FULL],
        )
        print(_line(row, base, floor), file=sys.stderr, flush=True)
        rows.append(row)
    return {
        "baselines": {name: result.as_json() for name, result in base.items()},
        "excess": {name: base[name].recomputed_tokens - floor for name in ("lru", "belady")},
        "levels": [vars(row) for row in rows],
    }


def _scalesim(trace: Trace, config: ReplayConfig) -> PolicyResult:
    return replay_policies(trace, ["scalesim"], config)["scalesim"]


def _line(row: LevelResult, base: dict[str, PolicyResult], floor: int) -> str:
    lru = max(1, base["lru"].recomputed_tokens - floor)
    belady = max(1, base["belady"].recomputed_tokens - floor)
    return (
        f"{row.level:>12}  error {row.mean_abs_error_steps:8.1f} steps  "
        f"learned {row.learned_excess / lru:.2f}x LRU {row.learned_excess / belady:.2f}x Belady  "
        f"full {row.full_excess / lru:.2f}x LRU {row.full_excess / belady:.2f}x Belady"
    )


def markdown(document: dict[str, Any], title: str) -> str:
    """The sweep as a table of excess recompute, in multiples of LRU's and Belady's."""
    lru, belady = (max(1, document["excess"][name]) for name in ("lru", "belady"))
    settings = [f"- {key}: `{json.dumps(document[key])}`" for key in ("trace", "params", "machine")]
    rows = [
        f"| {row['level']} | {row['mean_abs_error_steps']} | "
        f"{row['learned_excess'] / lru:.2f} | {row['learned_excess'] / belady:.2f} | "
        f"{row['full_excess'] / lru:.2f} | {row['full_excess'] / belady:.2f} |"
        for row in document["levels"]
    ]
    return "\n".join(
        [
            f"# {title}",
            "",
            *settings,
            "",
            f"Excess recompute (recomputed - infinite's): LRU {document['excess']['lru']}, "
            f"Belady {document['excess']['belady']} tokens. ScaleSim's, in multiples:",
            "",
            "| hints | mean abs error (steps) | learned / LRU | learned / Belady "
            "| full trust / LRU | full trust / Belady |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def write(document: dict[str, Any], stem: Path) -> None:
    """``stem``.json, .md and .png."""
    report.write(document, stem, markdown=markdown, plot=plot)


def plot(document: dict[str, Any], path: Path, *, title: str) -> None:
    """Excess recompute per hint level: ScaleSim (learned, full trust), LRU and Belady."""
    plt = report.pyplot()
    levels = [row["level"] for row in document["levels"]]
    positions = list(range(len(levels)))
    figure, axes = plt.subplots(figsize=(8, 4))
    for key, label in (("learned_excess", "scalesim"), ("full_excess", "scalesim, full trust")):
        axes.plot(positions, [row[key] for row in document["levels"]], "o-", label=label)
    for name, style in (("lru", "--"), ("belady", ":")):
        axes.plot(positions, [document["excess"][name]] * len(levels), style, label=name)
    axes.set_xticks(positions, levels, rotation=20)
    axes.set(xlabel="hint quality", ylabel="excess recomputed tokens", title=title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
