"""Tables, JSON and plots of replay results over memory ratios.

Who calls it: ``cli.py`` (``replay`` and ``sweep``). Writes ``results`` exactly as the
issue specifies (policy -> the seven keys) and, for a sweep, one ``results`` per ratio
under ``sweep``; the PNG draws recomputed tokens and makespan against memory ratio.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import report
from .replay.result import PolicyResult

_COLUMNS = (
    ("policy", 10),
    ("prompt_tok", 12),
    ("gpu_hit", 12),
    ("host_hit", 12),
    ("recomputed", 12),
    ("h2d_GB", 8),
    ("lora_ld", 8),
    ("makespan_s", 11),
)


def results_json(results: Mapping[str, PolicyResult]) -> dict[str, dict[str, int | float]]:
    """The issue's ``results`` object."""
    return {policy: result.as_json() for policy, result in results.items()}


def table(results: Mapping[str, PolicyResult]) -> str:
    """A fixed-width text table, one row per policy."""
    head = " ".join(name.rjust(width) for name, width in _COLUMNS)
    rows = [head]
    for policy, item in results.items():
        cells = (
            policy,
            item.prompt_tokens,
            item.gpu_hit_tokens,
            item.host_hit_tokens,
            item.recomputed_tokens,
            f"{item.h2d_bytes / 1e9:.2f}",
            item.blocking_adapter_loads,
            f"{item.makespan_s:.1f}",
        )
        rows.append(" ".join(str(c).rjust(w) for c, (_, w) in zip(cells, _COLUMNS, strict=True)))
    return "\n".join(rows)


def markdown(
    by_ratio: Mapping[float, Mapping[str, PolicyResult]],
    title: str,
    *,
    meta: Mapping[str, Any] | None = None,
) -> str:
    """A markdown table of every ratio and policy, after the run's settings (``meta``)."""
    settings = [f"- {key}: `{json.dumps(value)}`" for key, value in (meta or {}).items()]
    lines = [
        f"# {title}",
        "",
        *settings,
        "",
        "| ratio | policy | prompt tokens | GPU hit | host hit | recomputed | H2D GB "
        "| blocking adapter loads | makespan s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for ratio, results in by_ratio.items():
        for policy, r in results.items():
            lines.append(
                f"| {ratio} | {policy} | {r.prompt_tokens} | {r.gpu_hit_tokens} | "
                f"{r.host_hit_tokens} | {r.recomputed_tokens} | {r.h2d_bytes / 1e9:.2f} | "
                f"{r.blocking_adapter_loads} | {r.makespan_s:.1f} |"
            )
    return "\n".join(lines) + "\n"


def write_sweep(
    by_ratio: Mapping[float, Mapping[str, PolicyResult]],
    *,
    stem: Path,
    meta: dict[str, Any],
    primary: float,
) -> None:
    """Write ``stem``.json (``results`` = the primary ratio), .md and .png."""
    document = {
        **meta,
        "results": results_json(by_ratio[primary]),
        "sweep": [
            {"memory_ratio": ratio, "results": results_json(results)}
            for ratio, results in by_ratio.items()
        ],
    }
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    text = markdown(by_ratio, stem.name, meta=meta)
    stem.with_suffix(".md").write_text(text, encoding="utf-8")
    plot(by_ratio, stem.with_suffix(".png"), title=stem.name)


def plot(by_ratio: Mapping[float, Mapping[str, PolicyResult]], path: Path, *, title: str) -> None:
    """Recomputed tokens and makespan against memory ratio, one line per policy."""
    plt = report.pyplot()
    ratios = sorted(by_ratio)
    policies = list(next(iter(by_ratio.values())))
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for policy in policies:
        left.plot(
            ratios, [by_ratio[r][policy].recomputed_tokens for r in ratios], "o-", label=policy
        )
        right.plot(ratios, [by_ratio[r][policy].makespan_s for r in ratios], "o-", label=policy)
    left.set(xlabel="GPU memory ratio", ylabel="recomputed tokens", title=title)
    right.set(xlabel="GPU memory ratio", ylabel="modelled makespan (s)", title=title)
    left.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
