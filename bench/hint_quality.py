"""How far a trace's hints are from the calls that really came: hint error statistics.

An analysis tool beside ``exact_hints`` (which replaces hints by the truth): it measures
the simulation's estimates themselves, apart from any policy. Each hint ``(s, agent,
next_step)`` is compared with the agent's first call at a step after ``s`` (a hint
applies after step ``s``'s calls, see ``docs/trace-format.md``). Hints with a number and
no later call, and null hints, are counted apart: they have no error in steps. Prints
a table; asserts nothing.

Run: ``python -m scalesim.bench.hint_quality TRACE.jsonl [...]``
"""

from __future__ import annotations

import argparse
import bisect
import statistics
from dataclasses import dataclass
from pathlib import Path

from .trace import Trace, read_trace


@dataclass(frozen=True)
class HintErrors:
    """Errors of the hints that name a step and have a true next call, in steps.

    ``early``/``late``: hints before/after the true call. ``unresolved``: hints naming a
    step with no later call in the trace. ``nulls``/``null_wrong``: null hints, and those
    followed by a call after all.
    """

    hints: int
    resolved: int
    mean_abs_steps: float
    median_abs_steps: float
    exact: int
    early: int
    late: int
    unresolved: int
    nulls: int
    null_wrong: int

    @property
    def exact_share(self) -> float:
        """Share of resolved hints that name the true next call's step."""
        return self.exact / self.resolved if self.resolved else 0.0


def true_next_calls(trace: Trace) -> dict[str, list[int]]:
    """Each agent's call steps, ascending."""
    steps: dict[str, list[int]] = {}
    for call in trace.calls:
        steps.setdefault(call.agent, []).append(call.step)
    return steps


def first_call_after(calls: list[int], step: int) -> int | None:
    """The first of an agent's ascending call steps ``calls`` after ``step`` (a hint of ``step``
    comes after that step's calls), None if it calls no more."""
    index = bisect.bisect_right(calls, step)
    return calls[index] if index < len(calls) else None


def hint_errors(trace: Trace) -> HintErrors:
    """Compare every hint of ``trace`` with its agent's first call after the hint's step."""
    calls = true_next_calls(trace)
    errors: list[int] = []
    unresolved = nulls = null_wrong = 0
    for hint in trace.hints:
        truth = first_call_after(calls.get(hint.agent, []), hint.step)
        if hint.next_step is None:
            nulls += 1
            null_wrong += truth is not None
        elif truth is None:
            unresolved += 1
        else:
            errors.append(hint.next_step - truth)
    absolute = [abs(error) for error in errors]
    return HintErrors(
        hints=len(trace.hints),
        resolved=len(errors),
        mean_abs_steps=statistics.fmean(absolute) if absolute else 0.0,
        median_abs_steps=statistics.median(absolute) if absolute else 0.0,
        exact=sum(1 for error in errors if error == 0),
        early=sum(1 for error in errors if error < 0),
        late=sum(1 for error in errors if error > 0),
        unresolved=unresolved,
        nulls=nulls,
        null_wrong=null_wrong,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("traces", type=Path, nargs="+")
    args = parser.parse_args(argv)
    print("trace hints resolved MAE_steps median_steps exact early late unresolved nulls")
    for path in args.traces:
        found = hint_errors(read_trace(path))
        print(
            f"{path.name} {found.hints} {found.resolved} {found.mean_abs_steps:.1f} "
            f"{found.median_abs_steps:.1f} {found.exact_share:.1%} {found.early} {found.late} "
            f"{found.unresolved} {found.nulls}"
        )


if __name__ == "__main__":
    main()
