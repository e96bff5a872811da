"""When the simulation may tell the server a trace hint: the timing rule of both drivers.

Who calls it: the replay's ScaleSim ranking (``policies.py``) and the live driver
(``bench/live/driver.py``), so that replay and live feed the runtime the same hints at the same
clock. A hint of step s for agent a is what the simulation knows once step s is done for a:
it is released when the issue clock has moved past s and every call of a at a step up to s
has completed. In lockstep the second rule is implied by the first (the clock moves past s
only once every call of step s completed). Out of order, an agent may trail the clock by up to
the window; without the second rule its hint for the call after next would replace the
prediction of the call it is still to make, and that call would rank as far, and score its
predictions as wrong, exactly when it is due.

Invariants: each hint is released once, in trace order (step, then file order); the result
depends only on the hints, the calls and the order of completions and clock moves.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence

from ..trace import Call, Hint


class HintFeed:
    """The trace's hints, released by the timing rule."""

    def __init__(self, hints: Sequence[Hint], calls: Sequence[Call]) -> None:
        self._hints = sorted(hints, key=lambda hint: hint.step)  # stable: file order in a step
        self._next = 0  # first hint whose step the clock has not passed yet
        self._held: list[Hint] = []  # passed by the clock, their agent not done with the step
        self._agent_of = [call.agent for call in calls]
        self._steps: dict[str, deque[int]] = defaultdict(deque)  # unfinished steps per agent
        for call in calls:
            self._steps[call.agent].append(call.step)

    def complete(self, index: int) -> None:
        """Call ``index`` (position in the trace's calls) completed.

        An agent's calls complete in trace order (each waits for the previous), so its
        unfinished steps stay a suffix of its calls.
        """
        self._steps[self._agent_of[index]].popleft()

    def due(self, clock: float) -> list[Hint]:
        """Hints released at ``clock`` and not handed out before, in trace order."""
        while self._next < len(self._hints) and self._hints[self._next].step < clock:
            self._held.append(self._hints[self._next])
            self._next += 1
        out: list[Hint] = []
        held: list[Hint] = []
        for hint in self._held:
            (out if self._done(hint) else held).append(hint)
        self._held = held
        return out

    def _done(self, hint: Hint) -> bool:
        """Whether ``hint``'s agent has no unfinished call at a step up to the hint's."""
        steps = self._steps.get(hint.agent)
        return not steps or steps[0] > hint.step
