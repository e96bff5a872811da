"""The demo's records and its report: a side-by-side table and a PNG of both policies' runs.

Who calls it: ``scalesim.demo`` after each policy's workload. Pure bookkeeping and plotting;
the numbers are what the servers reported (``usage.prompt_tokens_details.cached_tokens``) and
the client's own clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


class AgentCall(NamedTuple):
    """One completed request: its round, token counts and completion time (s)."""

    round_index: int
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    done_s: float  # seconds since the workload started (monotonic clock)


@dataclass(frozen=True)
class PolicyRun:
    """One policy's whole workload."""

    policy: str
    calls: tuple[AgentCall, ...]
    startup_s: float
    makespan_s: float

    @property
    def prompt_tokens(self) -> int:
        return sum(call.prompt_tokens for call in self.calls)

    @property
    def cached_tokens(self) -> int:
        return sum(call.cached_tokens for call in self.calls)

    @property
    def recomputed_tokens(self) -> int:
        return self.prompt_tokens - self.cached_tokens


def describe(runs: list[PolicyRun]) -> str:
    """A table with one column per policy, and ScaleSim's gain over stock when both ran."""
    rows = [
        ("completed calls", [f"{len(run.calls)}" for run in runs]),
        ("prompt tokens", [f"{run.prompt_tokens}" for run in runs]),
        (
            "cached tokens",
            [
                f"{run.cached_tokens} ({run.cached_tokens / max(run.prompt_tokens, 1):.1%})"
                for run in runs
            ],
        ),
        ("recomputed tokens", [f"{run.recomputed_tokens}" for run in runs]),
        ("makespan", [f"{run.makespan_s:.1f} s" for run in runs]),
        ("server startup", [f"{run.startup_s:.1f} s" for run in runs]),
    ]
    width = max(len(label) for label, _ in rows) + 2
    lines = ["".ljust(width) + "".join(run.policy.rjust(22) for run in runs)]
    lines += [label.ljust(width) + "".join(v.rjust(22) for v in values) for label, values in rows]
    by_policy = {run.policy: run for run in runs}
    stock, scalesim = by_policy.get("stock"), by_policy.get("scalesim")
    if stock is not None and scalesim is not None:
        saved = 1 - scalesim.recomputed_tokens / max(stock.recomputed_tokens, 1)
        speedup = stock.makespan_s / max(scalesim.makespan_s, 1e-9)
        lines.append(
            f"ScaleSim recomputes {saved:.0%} fewer prompt tokens than stock SGLang; "
            f"makespan stock / ScaleSim {speedup:.2f}x (CPU and a tiny model: a recomputed "
            "prefix costs little here, so time says less than the recomputed tokens)"
        )
    return "\n".join(lines)


def write_plot(runs: list[PolicyRun], path: Path) -> None:
    """Cumulative completed calls over time, and the cached share of each round, per policy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        times = sorted(call.done_s for call in run.calls)
        left.step(times, range(1, len(times) + 1), where="post", label=run.policy)
        rounds = sorted({call.round_index for call in run.calls})
        shares = [_cached_share(run, round_index) for round_index in rounds]
        right.plot([r + 1 for r in rounds], shares, "o-", label=run.policy)
    left.set(xlabel="time (s)", ylabel="completed calls", title="Calls completed")
    right.set(xlabel="round", ylabel="cached share of prompt tokens", title="Prefix cache hits")
    right.set_ylim(0, 1)
    for axis in (left, right):
        axis.legend()
        axis.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _cached_share(run: PolicyRun, round_index: int) -> float:
    calls = [call for call in run.calls if call.round_index == round_index]
    return sum(c.cached_tokens for c in calls) / max(sum(c.prompt_tokens for c in calls), 1)
