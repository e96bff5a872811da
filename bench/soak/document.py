"""The soak's JSON result: totals, rates, latencies, growth after warm-up, provenance.

Called by ``command.run`` after the server has stopped; ``report`` renders what it returns.
Invariants: pure apart from reading the machine, git and torch's CUDA check; growth runs from
the first sample at :data:`~.params.WARM_FRACTION` of the run to the last one; ``errors`` sums
exactly :data:`~.params.ERROR_KINDS` (lost updates are counted on their own).
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..live.document import machine
from ..live.report import percentile
from .load import Load
from .params import ERROR_KINDS, MIB, WARM_FRACTION, SoakParams
from .samples import Sample

#: Sample fields whose growth after warm-up is reported.
GROWTH_FIELDS = (
    *("rss_bytes", "pss_bytes", "namespaces", "agents"),
    *("path_owners", "owned_nodes", "device_tokens", "host_tokens"),
)


def growth(samples: Sequence[Sample], duration_s: float) -> dict[str, Any]:
    """Each of :data:`GROWTH_FIELDS` at the first sample at 25% of the run, at the end, its
    maximum in between and the growth; and the RSS trend after warm-up (least squares)."""
    warm_at = next((i for i, s in enumerate(samples) if s.t_s >= WARM_FRACTION * duration_s), 0)
    warm, end, after = samples[warm_at], samples[-1], samples[warm_at:]
    fields: dict[str, Any] = {"warm_t_s": warm.t_s, "end_t_s": end.t_s}
    for name in GROWTH_FIELDS:
        start_value, end_value = getattr(warm, name), getattr(end, name)
        fields[name] = {
            "warm": start_value,
            "end": end_value,
            "max_after_warm": max(getattr(s, name) for s in after),
            "growth": end_value - start_value,
            "growth_pct": round(100 * (end_value - start_value) / start_value, 2)
            if start_value
            else None,
        }
    times = [s.t_s for s in after]
    if len(set(times)) >= 2:
        fit = statistics.linear_regression(times, [s.rss_bytes / MIB for s in after])
        fields["rss_slope_mib_per_min"] = round(60 * fit.slope, 3)
    return fields


def document(params: SoakParams, load: Load, *, startup_s: float, wall_s: float) -> dict[str, Any]:
    """The JSON result: totals, rates, latencies, growth, the drained state and every sample."""
    totals = _totals(load)
    latency = {
        kind: {f"p{q}": round(percentile(sorted(values), q), 4) for q in (50, 99)}
        for kind, values in load.tally.latency_s.items()
    }
    rates = {key: round(totals[key] / load.load_s, 2) for key in ("requests", "updates", "deletes")}
    return {
        "machine": machine(),
        "source": source_tree(),
        "params": dataclasses.asdict(params),
        "serve_flags": serve_flags(params),
        "startup_s": round(startup_s, 1),
        "load_s": round(load.load_s, 1),
        "wall_s": round(wall_s, 1),
        "aborted": load.aborted,
        "totals": totals,
        "rates_per_s": rates,
        "latency_s": latency,
        "growth": growth(load.samples, params.duration_s) if load.samples else None,
        "drained": load.drained._asdict() if load.drained else None,
        "examples": load.tally.examples,
        "samples": [sample._asdict() for sample in load.samples],
    }


def _totals(load: Load) -> dict[str, int]:
    """The client's counts, and the server's own distance and rejection counters."""
    counts = load.tally.snapshot()
    names = [*("requests", "updates", "deletes"), *ERROR_KINDS, "lost_updates"]
    names += ["namespaces_checked", "already_applied", "applied_entries"]
    names += ["prompt_tokens", "cached_tokens"]
    totals = {name: counts.get(name, 0) for name in names}
    totals["errors"] = sum(counts.get(kind, 0) for kind in ERROR_KINDS)
    last = load.drained or (load.samples[-1] if load.samples else None)
    if last is not None:
        totals["server_distance_updates"] = last.distance_updates
        # every successful chat applies one entry; a reply's ``applied`` also counts the
        # withdrawn agents (``unknown``), which the server's counter leaves out
        totals["client_distance_updates"] = totals["applied_entries"] + totals["requests"]
        totals["server_rejected_updates"] = last.rejected_updates
    return totals


def source_tree() -> dict[str, Any] | None:
    """The commit the server's code came from, and its files changed since (None: no git)."""
    root = Path(__file__).resolve().parent.parent.parent
    try:
        commit = _git(root, "rev-parse", "HEAD").strip()
        dirty = _git(root, "status", "--porcelain", "--", "scalesim", "patches", "kernels")
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "changed": [line[3:] for line in dirty.splitlines()]}


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True)
    return done.stdout.decode()


def serve_flags(params: SoakParams) -> list[str]:
    """``scalesim serve`` flags besides the model (``--device cpu`` without CUDA)."""
    import torch

    flags = ["--radix-eviction-policy", "scalesim", "--max-total-tokens", str(params.pool_tokens)]
    return flags if torch.cuda.is_available() else [*flags, "--device", "cpu"]
