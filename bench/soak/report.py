"""The soak's report: Markdown (also printed) and a PNG of memory and tables over time.

Called by ``command.run_from_args`` with the JSON result of ``document.document``.
Invariants: reads only that result (a plain dict, as written to JSON), never the live objects;
matplotlib is imported lazily with the Agg backend, so no display is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .document import GROWTH_FIELDS
from .params import ERROR_KINDS, MIB, WARM_FRACTION


def render(result: dict[str, Any]) -> str:
    """The Markdown report (also printed): totals, then growth after warm-up."""
    params, totals, latency = result["params"], result["totals"], result["latency_s"]
    rates = result["rates_per_s"]

    def server(name: str) -> str:
        return f"{totals.get('server_' + name, 0):,}"

    lines = [
        f"# Soak: {params['simulations']} simulations against one `scalesim serve` for "
        f"{params['duration_s']:g} s ({result['machine']['name']})",
        "",
        f"Params: `{json.dumps(params)}`; server flags `{' '.join(result['serve_flags'])}`. "
        f"Server healthy after {result['startup_s']} s; load {result['load_s']} s; wall "
        f"{result['wall_s']} s; aborted: {result['aborted'] or 'no'}.",
        "",
        "| total | value |",
        "|---|---:|",
        f"| chat requests | {totals['requests']:,} ({rates['requests']}/s) |",
        f"| distance updates | {totals['updates']:,} ({rates['updates']}/s) |",
        f"| namespaces deleted | {totals['deletes']:,} |",
        f"| errors ({', '.join(ERROR_KINDS)}) | {totals['errors']} |",
        f"| lost updates / namespaces checked | {totals['lost_updates']} / "
        f"{totals['namespaces_checked']:,} |",
        f"| chat latency p50 / p99 (s) | {latency['chat']['p50']} / {latency['chat']['p99']} |",
        f"| update latency p50 / p99 (s) | {latency['tick']['p50']} / {latency['tick']['p99']} |",
        f"| cached / prompt tokens | {totals['cached_tokens']:,} / {totals['prompt_tokens']:,} |",
        f"| server's distance_updates / the client's count | {server('distance_updates')} / "
        f"{totals.get('client_distance_updates', 0):,} |",
        f"| server's rejected_updates | {server('rejected_updates')} |",
        "",
        "Lost update: a namespace whose `GET /scalesim/v1/state` version, read after its chats "
        "drained and before its `DELETE`, is not the version of the last update the server "
        "accepted. The client's count of distance entries adds each update's `applied` (which "
        "also counts its withdrawn agent) and one per chat; the server's `distance_updates` "
        "leaves withdrawals out, so the two differ by about one per update.",
        f"Server code: commit {_source(result['source'])}.",
    ]
    return "\n".join([*lines, *_growth_lines(result)]) + "\n"


def _source(source: dict[str, Any] | None) -> str:
    if source is None:
        return "unknown"
    changed = ", ".join(source["changed"]) or "none"
    return f"`{source['commit'][:12]}`, files changed since: {changed}"


def _growth_lines(result: dict[str, Any]) -> list[str]:
    grown, drained = result["growth"], result["drained"]
    if grown is None:
        return ["", "No sample was taken."]
    lines = [
        "",
        f"Growth from the first sample at {WARM_FRACTION:.0%} of the run (t = {grown['warm_t_s']}"
        f" s) to the last (t = {grown['end_t_s']} s); RSS and PSS over the server's process "
        f"tree in MiB; RSS trend after warm-up {grown.get('rss_slope_mib_per_min')} MiB/min.",
        "",
        "| metric | at 25% | end | max after 25% | growth |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in GROWTH_FIELDS:
        row, scale = grown[name], MIB if name.endswith("_bytes") else 1
        values = (row["warm"], row["end"], row["max_after_warm"], row["growth"])
        cells = " | ".join(f"{value / scale:,.0f}" for value in values)
        pct = "" if row["growth_pct"] is None else f" ({row['growth_pct']:+.1f}%)"
        lines.append(f"| {name.removesuffix('_bytes')} | {cells}{pct} |")
    if drained is not None:
        after = ", ".join(f"{name} {drained[name]:,}" for name in GROWTH_FIELDS[2:])
        lines += ["", f"After the load, every namespace deleted: {after}."]
    return lines


def write_plot(result: dict[str, Any], path: Path) -> None:
    """RSS/PSS, the runtime's tables and the tokens held, over time; warm-up marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, grown = result["samples"], result["growth"]
    times = [s["t_s"] for s in samples]
    figure, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    panels = (
        ("server tree memory (MiB)", ("rss_bytes", "pss_bytes"), MIB),
        ("runtime tables", ("namespaces", "agents", "path_owners", "owned_nodes"), 1),
        ("tokens held", ("device_tokens", "host_tokens"), 1),
    )
    for axis, (title, names, scale) in zip(axes, panels, strict=True):
        for name in names:
            axis.plot(times, [s[name] / scale for s in samples], label=name.removesuffix("_bytes"))
        if grown is not None:
            axis.axvline(grown["warm_t_s"], color="grey", linestyle="--", linewidth=1)
        axis.set(ylabel=title)
        axis.legend(loc="upper left", fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1].set(xlabel="time since the load started (s)")
    figure.suptitle(f"Soak ({result['machine']['name']}): dashed line = warm-up mark")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
