"""Hints of chosen quality for one trace: exact, noisy, uninformative or adversarial.

Who calls it: the hint-quality sweep (``hint_sweep.py``) and its tests. Two variants start from
the trace's own hints, to split its gap to Belady into what the simulation could not foresee and
the rest:

- ``own``: the trace's hints as its simulation sent them.
- ``own-filled``: the same, with each null ("no call expected") replaced by the agent's true next
  call where one comes: as if the calls nobody could foresee (a workflow's next arrival, a post
  not yet written) were known, every estimate otherwise unchanged.

Every other variant keeps the trace's calls and hints at the positions an exact hinter would
(each agent at step 0 with its first call unless that is at step 0, at each step it calls at with
its first call at a later step, null after its last: a hint of step s comes after step s's calls)
and changes only how far ahead each hint says the call is:

- ``exact``: the true next call.
- ``noise:F``: the true distance plus a Gaussian error of standard deviation ``F`` times that
  distance (as many early as late; never before the hint's own step). ``noise:1`` errs by the
  size of the distance itself.
- ``scale:F``: every true distance times ``F`` (a biased estimator: ``scale:0.5`` expects each
  call twice as soon as it comes, so every prediction goes overdue; ``scale:2`` twice as late).
- ``random``: a distance drawn uniformly from [0, twice the trace's mean distance]: no
  information at all.
- ``adversarial``: the true distances turned upside down (``longest - true``): the nearest
  call is said to be the farthest.
- ``partial:F``: exact hints for a share ``F`` of the agents (drawn at random) and none at all
  for the others, as a simulation that can estimate only some kinds of agents sends them.

Invariants: the same trace, level and seed give the same hints (a private RNG per run).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from math import inf

from .hint_quality import first_call_after, true_next_calls
from .trace import Event, Hint, Trace

EXACT, RANDOM, ADVERSARIAL = "exact", "random", "adversarial"
OWN, OWN_FILLED = "own", "own-filled"
_NOISE = "noise:"
_SCALE = "scale:"
_PARTIAL = "partial:"


@dataclass(frozen=True)
class _Slot:
    """Where a hint goes: at ``step`` about ``agent``'s call at ``truth`` (None: no more)."""

    step: int
    agent: str
    truth: int | None


def check_level(level: str) -> str:
    """``level`` if it names a variant; ValueError naming the choices otherwise."""
    if level in (EXACT, RANDOM, ADVERSARIAL, OWN, OWN_FILLED):
        return level
    for prefix, least, most in ((_NOISE, 0.0, inf), (_SCALE, 1e-9, inf), (_PARTIAL, 0.0, 1.0)):
        if level.startswith(prefix):
            try:
                if least <= float(level[len(prefix) :]) <= most:
                    return level
            except ValueError:
                pass
    raise ValueError(
        f"hint level {level!r}: use own, own-filled, exact, noise:F (F >= 0), scale:F (F > 0), "
        "partial:F (0 <= F <= 1), random or adversarial"
    )


def with_hints(trace: Trace, level: str, *, seed: int = 0) -> Trace:
    """``trace`` with its hints replaced by the variant ``level`` (see the module docstring)."""
    if check_level(level) == OWN:
        return trace
    if level == OWN_FILLED:
        return _nulls_filled(trace)
    rng = random.Random(seed)
    slots = _slots(trace)
    if check_level(level).startswith(_PARTIAL):
        share = float(level[len(_PARTIAL) :])
        hinted = {agent for agent in sorted({slot.agent for slot in slots}) if rng.random() < share}
        slots = [slot for slot in slots if slot.agent in hinted]
    distances = [slot.truth - slot.step for slot in slots if slot.truth is not None]
    distort = _distortion(level, distances, rng)
    hints = [
        Hint(slot.step, slot.agent, None)
        if slot.truth is None
        else Hint(slot.step, slot.agent, slot.step + distort(slot.truth - slot.step))
        for slot in slots
    ]

    def order(event: Event) -> tuple[int, bool]:
        return event.step, isinstance(event, Hint)

    return replace(trace, events=tuple(sorted([*trace.calls, *hints], key=order)))


def _nulls_filled(trace: Trace) -> Trace:
    """``trace`` with each null hint replaced by its agent's first call after the hint's step."""
    steps = true_next_calls(trace)

    def filled(event: Event) -> Event:
        if not isinstance(event, Hint) or event.next_step is not None:
            return event
        after = first_call_after(steps.get(event.agent, []), event.step)
        return event if after is None else replace(event, next_step=after)

    return replace(trace, events=tuple(filled(event) for event in trace.events))


def _slots(trace: Trace) -> list[_Slot]:
    steps = true_next_calls(trace)
    slots = []
    for agent, calls in sorted(steps.items()):
        called = list(dict.fromkeys(calls))  # a hint of step s comes after all of step s's calls
        if called[0] > 0:
            slots.append(_Slot(0, agent, called[0]))
        slots += [_Slot(step, agent, after) for step, after in itertools.pairwise(called)]
        slots.append(_Slot(called[-1], agent, None))
    return slots


def _distortion(level: str, distances: list[int], rng: random.Random) -> Callable[[int], int]:
    """The map from a true distance (steps) to the hinted one."""
    longest = max(distances, default=0)
    mean = sum(distances) / len(distances) if distances else 0.0
    if level == EXACT or level.startswith(_PARTIAL):
        return lambda distance: distance
    if level == RANDOM:
        return lambda distance: round(rng.uniform(0.0, 2.0 * mean))
    if level == ADVERSARIAL:
        return lambda distance: longest - distance
    if level.startswith(_SCALE):
        factor = float(level[len(_SCALE) :])
        return lambda distance: round(distance * factor)
    scale = float(level[len(_NOISE) :])
    return lambda distance: max(0, round(distance + rng.gauss(0.0, scale * distance)))
