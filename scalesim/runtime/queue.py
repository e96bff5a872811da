"""Calls waiting for the GPU, the one furthest behind its simulation first (``queue_order: lag``).

Who calls it: the AFTER hook on SGLang's ``SchedulePolicy.calc_priority``
(``scalesim.sglang.queue``) re-sorts the waiting queue; the trace replay orders its admissions
with the same function. In an out-of-order simulation (AI Metropolis) a call may run only
within a window of the oldest unfinished step, so the calls that lag most hold everybody else
back; serving them first lets the window move.

Invariants: the result is a permutation; the order is stable (equal lags keep the order they
came in: SGLang's policy order live, arrival order in the replay); it depends on clocks only, so
every tensor-parallel rank sorts alike. A call without a clock, or of an unknown namespace,
lags 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .runtime import ScaleSimRuntime


@dataclass(frozen=True)
class QueuedCall:
    """A waiting call as the ordering sees it: its namespace and the clock it was issued at."""

    namespace: str
    clock: float | None


def lag_order(runtime: ScaleSimRuntime, calls: Sequence[QueuedCall]) -> list[int]:
    """Indices into ``calls``, the largest lag behind the namespace's clock first (stable)."""
    lags = [_lag(runtime, call) for call in calls]
    return sorted(range(len(calls)), key=lambda index: -lags[index])


def _lag(runtime: ScaleSimRuntime, call: QueuedCall) -> float:
    frontier = runtime.clock_of(call.namespace)
    if call.clock is None or frontier is None:
        return 0.0
    return max(0.0, frontier - call.clock)
