"""exact_hints: every agent's hints name its true next call, calls untouched."""

from __future__ import annotations

from scalesim.bench.exact_hints import exact_hints
from scalesim.bench.trace import Call, Hint, Segment, Trace, TraceHeader


def test_hints_are_the_true_next_calls_in_step_order() -> None:
    prompt = (Segment("p", 4),)
    calls = [Call("c0", "a", 2, prompt, 1), Call("c1", "b", 3, prompt, 1)]
    calls += [Call("c2", "a", 7, prompt, 1)]
    stale = Hint(0, "a", 99)
    trace = Trace(TraceHeader("t", 2, 10), (stale, calls[0], calls[1], calls[2]))
    rewritten = exact_hints(trace)
    assert rewritten.calls == tuple(calls)
    assert set(rewritten.hints) == {
        Hint(0, "a", 2),
        Hint(2, "a", 7),
        Hint(7, "a", None),
        Hint(0, "b", 3),
        Hint(3, "b", None),
    }
    steps = [event.step for event in rewritten.events]
    assert steps == sorted(steps)
