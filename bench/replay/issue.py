"""When calls may issue: lockstep step barriers or out-of-order dependencies.

Who calls it: the replay engine, after every completion. Invariants: a call is handed
out once, in trace order among the calls that became ready together; a call always
waits for its agent's previous call and for its ``deps``.
"""

from __future__ import annotations

import heapq
from collections import Counter

from ..trace import Call
from .result import Mode


class IssueGate:
    """Hands out the calls that may issue now, given which calls completed."""

    def __init__(self, calls: tuple[Call, ...], *, mode: Mode, window_steps: int) -> None:
        self.calls = calls
        self.mode = mode
        self.window_steps = window_steps
        index_of = {call.id: index for index, call in enumerate(calls)}
        previous: dict[str, int] = {}
        self._blockers: list[int] = []
        self._dependents: list[list[int]] = [[] for _ in calls]
        for index, call in enumerate(calls):
            before = {index_of[dep] for dep in call.deps}
            if call.agent in previous:
                before.add(previous[call.agent])
            previous[call.agent] = index
            self._blockers.append(len(before))
            for dep in before:
                self._dependents[dep].append(index)
        self._unfinished_steps = Counter(call.step for call in calls)
        self._steps = sorted(self._unfinished_steps)
        self._oldest = 0  # index into _steps of the oldest step with unfinished calls
        self._unblocked = [(call.step, i) for i, call in enumerate(calls) if not self._blockers[i]]
        heapq.heapify(self._unblocked)
        self.current_step = calls[0].step if calls else 0

    def complete(self, index: int) -> None:
        """Record that call ``index`` finished."""
        self._unfinished_steps[self.calls[index].step] -= 1
        for dependent in self._dependents[index]:
            self._blockers[dependent] -= 1
            if self._blockers[dependent] == 0:
                heapq.heappush(self._unblocked, (self.calls[dependent].step, dependent))

    def ready(self) -> list[int]:
        """Unblocked calls within the window of the oldest unfinished step, in trace order.

        Lockstep is the window 0: only calls of the oldest unfinished step issue.
        """
        while (
            self._oldest < len(self._steps)
            and not self._unfinished_steps[self._steps[self._oldest]]
        ):
            self._oldest += 1
        if self._oldest >= len(self._steps):
            return []
        window = 0 if self.mode is Mode.LOCKSTEP else self.window_steps
        limit = self._steps[self._oldest] + window
        out: list[int] = []
        while self._unblocked and self._unblocked[0][0] <= limit:
            out.append(heapq.heappop(self._unblocked)[1])
        if out:
            self.current_step = max(self.current_step, self.calls[out[-1]].step)
        return sorted(out)
