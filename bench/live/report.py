"""A live run's per-policy results, and their table, Markdown and PNG.

Who calls it: ``bench/live/run.py`` turns each policy's call outcomes into a
:class:`LivePolicyResult` (:func:`summarize`) and writes the document with :func:`write`.
Token counts are what the server reported in ``usage`` (``cached_tokens`` with SGLang's
``--enable-cache-report``, which ``scalesim serve`` turns on); times are the driver's
monotonic clock. Invariant: ``recomputed_tokens = prompt_tokens - cached_tokens``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..replay.result import PolicyResult
from .driver import CallOutcome

#: The replay policy that predicts each live policy (stock SGLang is LRU).
REPLAY_POLICY = {"stock": "lru", "scalesim": "scalesim"}


def replay_policy_of(run: str) -> str:
    """The replay policy of a run key (``policy`` or, for a cluster run, ``policy+routing``)."""
    policy = run.split("+", 1)[0]
    return REPLAY_POLICY.get(policy, policy)


@dataclass(frozen=True)
class LivePolicyResult:
    """What one policy's server did over the whole trace."""

    requests: int
    errors: int
    prompt_tokens: int  # successful calls only, as the server counted them
    cached_tokens: int
    completion_tokens: int
    expected_prompt_tokens: int  # the trace's lengths of the same calls
    makespan_s: float
    p50_latency_s: float
    p99_latency_s: float
    kv_prefetch_tokens: int
    lora_loads_blocking: int | None  # the server's counter; None: not measurable (stock)
    ticks: int  # distance updates sent
    tick_errors: int
    startup_s: float
    lora_loads_prefetch: int | None = None  # as lora_loads_blocking
    lora_prefetch_failures: int | None = None

    @property
    def recomputed_tokens(self) -> int:
        """Prompt tokens the server computed (not found in its cache)."""
        return self.prompt_tokens - self.cached_tokens

    def as_json(self) -> dict[str, int | float | None]:
        """The ``results[policy]`` object (api.md section 5 keys first)."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "cached_tokens": self.cached_tokens,
            "recomputed_tokens": self.recomputed_tokens,
            "makespan_s": round(self.makespan_s, 3),
            "p50_latency_s": round(self.p50_latency_s, 4),
            "p99_latency_s": round(self.p99_latency_s, 4),
            "kv_prefetch_tokens": self.kv_prefetch_tokens,
            "lora_loads_blocking": self.lora_loads_blocking,
            "completion_tokens": self.completion_tokens,
            "expected_prompt_tokens": self.expected_prompt_tokens,
            "ticks": self.ticks,
            "tick_errors": self.tick_errors,
            "startup_s": round(self.startup_s, 1),
            "lora_loads_prefetch": self.lora_loads_prefetch,
            "lora_prefetch_failures": self.lora_prefetch_failures,
        }


@dataclass(frozen=True)
class Counts:
    """What the run knows besides the outcomes.

    The adapter-load counters are ``GET /scalesim/v1/state``'s; ``None`` where the server has
    no ScaleSim hooks (stock SGLang counts no adapter loads), so not measurable, not zero.
    """

    expected_prompt_tokens: int
    kv_prefetch_tokens: int
    ticks: int
    tick_errors: int
    startup_s: float
    lora_loads_blocking: int | None = None
    lora_loads_prefetch: int | None = None
    lora_prefetch_failures: int | None = None


def summarize(
    outcomes: Sequence[CallOutcome], *, started_s: float, counts: Counts
) -> LivePolicyResult:
    """One policy's totals; latencies and makespan in seconds of the driver's clock."""
    good = [outcome for outcome in outcomes if outcome.reply.error is None]
    latencies = sorted(outcome.latency_s for outcome in good)
    return LivePolicyResult(
        requests=len(outcomes),
        errors=len(outcomes) - len(good),
        prompt_tokens=sum(outcome.reply.prompt_tokens for outcome in good),
        cached_tokens=sum(outcome.reply.cached_tokens for outcome in good),
        completion_tokens=sum(outcome.reply.completion_tokens for outcome in good),
        expected_prompt_tokens=counts.expected_prompt_tokens,
        makespan_s=max((outcome.done_s for outcome in outcomes), default=started_s) - started_s,
        p50_latency_s=percentile(latencies, 50),
        p99_latency_s=percentile(latencies, 99),
        kv_prefetch_tokens=counts.kv_prefetch_tokens,
        lora_loads_blocking=counts.lora_loads_blocking,
        ticks=counts.ticks,
        tick_errors=counts.tick_errors,
        startup_s=counts.startup_s,
        lora_loads_prefetch=counts.lora_loads_prefetch,
        lora_prefetch_failures=counts.lora_prefetch_failures,
    )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ascending ``ordered``, linear between ranks (0: empty)."""
    if not ordered:
        return 0.0
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def table(results: Mapping[str, LivePolicyResult], predicted: Mapping[str, PolicyResult]) -> str:
    """Live results with the replay's predicted recomputed tokens beside them."""
    head = ["policy", "requests", "errors", "prompt", "cached", "recomputed", "replay_recomp"]
    head += ["makespan_s", "p50_s", "p99_s", "prefetch", "lora_blocking"]
    rows: list[Sequence[str]] = [head]
    for policy, item in results.items():
        guess = predicted.get(replay_policy_of(policy))
        rows.append(
            (
                policy,
                str(item.requests),
                str(item.errors),
                str(item.prompt_tokens),
                f"{item.cached_tokens} ({item.cached_tokens / max(item.prompt_tokens, 1):.0%})",
                str(item.recomputed_tokens),
                "-" if guess is None else str(guess.recomputed_tokens),
                f"{item.makespan_s:.1f}",
                f"{item.p50_latency_s:.2f}",
                f"{item.p99_latency_s:.2f}",
                str(item.kv_prefetch_tokens),
                _count(item.lora_loads_blocking),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join(" ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


def comparison(document: Mapping[str, Any]) -> list[str]:
    """ScaleSim against stock as ratios (live), and the room any policy had at this ratio (the
    replay's Belady against LRU): a small saving where Belady saves little is all there was."""
    lines: list[str] = []
    live = document["results"]
    stock, scalesim = live.get("stock"), live.get("scalesim")
    if stock and scalesim and stock["recomputed_tokens"] > 0 and scalesim["makespan_s"] > 0:
        recompute = scalesim["recomputed_tokens"] / stock["recomputed_tokens"]
        speedup = stock["makespan_s"] / scalesim["makespan_s"]
        lines.append(
            f"live: ScaleSim recomputed {recompute:.2f}x stock's prompt tokens and finished"
            f" {speedup:.2f}x as fast (stock makespan / ScaleSim's)"
        )
        pairs = list(
            zip(stock.get("makespans_s", []), scalesim.get("makespans_s", []), strict=False)
        )
        if len(pairs) > 1:
            lines.append(
                "live, each repeat (stock / ScaleSim makespan, in run order): "
                + ", ".join(f"{a:.1f} / {b:.1f} s = {a / b:.2f}x" for a, b in pairs if b > 0)
            )
    predicted = document["replay_prediction"]["results"]
    lru = predicted.get("lru")
    if lru and lru["recomputed_tokens"] > 0:
        saved = {
            policy: 1 - predicted[policy]["recomputed_tokens"] / lru["recomputed_tokens"]
            for policy in ("scalesim", "belady", "infinite")
            if policy in predicted
        }
        if saved:
            lines.append(
                "replay: recomputed tokens saved vs LRU: "
                + ", ".join(f"{policy} {share:.0%}" for policy, share in saved.items())
            )
    return lines


def _count(value: int | None) -> str:
    """A counter for a table: ``n/a`` where the server cannot count it."""
    return "n/a" if value is None else str(value)


def markdown(document: Mapping[str, Any], title: str) -> str:
    """The run as Markdown: settings, the live table, the replay's prediction, notes."""
    lines = [f"# {title}", ""]
    for key in ("trace", "params", "machine"):
        lines.append(f"- {key}: `{json.dumps(document[key])}`")
    lines += ["", "## Live", ""]
    lines += [
        "| policy | requests | errors | prompt tokens | cached | recomputed | makespan s "
        "| p50 latency s | p99 latency s | KV prefetch tokens | blocking adapter loads |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for policy, r in document["results"].items():
        lines.append(
            f"| {policy} | {r['requests']} | {r['errors']} | {r['prompt_tokens']} | "
            f"{r['cached_tokens']} | {r['recomputed_tokens']} | {r['makespan_s']:.1f} | "
            f"{r['p50_latency_s']:.2f} | {r['p99_latency_s']:.2f} | {r['kv_prefetch_tokens']} | "
            f"{_count(r.get('lora_loads_blocking'))} |"
        )
    prediction = document["replay_prediction"]
    lines += ["", "## Replay prediction (same trace and ratios)", ""]
    lines += [
        "| policy | prompt tokens | GPU hit | host hit | recomputed | modelled makespan s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for policy, r in prediction["results"].items():
        lines.append(
            f"| {policy} | {r['prompt_tokens']} | {r['gpu_hit_tokens']} | "
            f"{r['host_hit_tokens']} | {r['recomputed_tokens']} | {r['makespan_s']:.1f} |"
        )
    lines += ["", "## Comparison", "", *(f"- {line}" for line in comparison(document))]
    lines += ["", "## Notes", "", *(f"- {note}" for note in document["notes"])]
    return "\n".join(lines) + "\n"


def plot(document: Mapping[str, Any], path: Path, *, title: str) -> None:
    """Cumulative completed calls over time, and recomputed tokens (live vs replay), per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    policies = list(document["results"])
    for policy in policies:
        times = document["timeline_s"][policy]
        left.step([0.0, *times], range(len(times) + 1), where="post", label=policy)
    left.set(xlabel="time since the first call (s)", ylabel="completed calls", title=title)
    predicted = document["replay_prediction"]["results"]
    live = [document["results"][p]["recomputed_tokens"] for p in policies]
    guess = [predicted.get(replay_policy_of(p), {}).get("recomputed_tokens", 0) for p in policies]
    spots = range(len(policies))
    right.bar([x - 0.2 for x in spots], live, width=0.4, label="live (server usage)")
    right.bar([x + 0.2 for x in spots], guess, width=0.4, label="replay prediction")
    right.set_xticks(list(spots), policies)
    right.set(ylabel="recomputed prompt tokens", title="Recomputed tokens")
    for axis in (left, right):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(document: Mapping[str, Any], json_path: Path) -> tuple[Path, Path]:
    """Write ``json_path`` and, beside it, the Markdown and the PNG; returns their paths."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    md_path, png_path = json_path.with_suffix(".md"), json_path.with_suffix(".png")
    md_path.write_text(markdown(document, json_path.stem), encoding="utf-8")
    plot(document, png_path, title=json_path.stem)
    return md_path, png_path
