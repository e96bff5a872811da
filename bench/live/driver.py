"""Issues a trace's calls and distance ticks against a server, in the simulation's order.

Who calls it: ``bench/live/run.py`` once per policy, with ``send`` and ``tick`` bound to a
real server; the unit tests with fakes. The driver knows nothing of HTTP: ``send`` runs one
call and returns its :class:`Reply`, ``tick`` pushes one distance update.

Order (trace-format replay semantics, the rules of the cache replay's
:class:`~scalesim.bench.replay.issue.IssueGate`, reused here):
- lockstep: the calls of step k are sent once every call of an earlier step completed;
- ooo: a call is sent once its deps and its agent's previous call completed and its step is
  at most ``window_steps`` past the oldest step with an unfinished call.
At most ``concurrency`` calls are in flight; the others wait their turn in trace order.

Hints (timing rule, :class:`~scalesim.bench.replay.hint_feed.HintFeed`, as the replay feeds
them): whenever the issue clock moves to a new step k, one ``tick(k, ...)`` carries every hint
released and not yet sent (the latest per agent): hints of a step before k whose agent has no
unfinished call up to that step. It goes before any call of step k is sent. A hinted next
call already in the past at k (a wrong estimate) is sent as k: the server requires
``next_call >= clock``.

Invariants: every call is sent exactly once and completes exactly once (a failed call
completes with its error, so the run goes on); times come from the injected ``now``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from ..replay.hint_feed import HintFeed
from ..replay.issue import IssueGate
from ..replay.result import Mode
from ..trace import Call, Hint

#: Agent -> absolute next call step (None: no call expected), as ``ScaleSim.tick`` takes it.
NextCalls = Mapping[str, float | None]


@dataclass(frozen=True)
class Reply:
    """What the server reported for one call (token counts from its ``usage``)."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None


@dataclass(frozen=True)
class CallOutcome:
    """One call as the driver saw it; times in seconds of ``now``."""

    index: int  # position in the trace's calls
    ready_s: float  # when the issue rules released it
    sent_s: float  # when it got a concurrency slot and was sent
    done_s: float
    reply: Reply

    @property
    def latency_s(self) -> float:
        """Seconds from sending to the reply."""
        return self.done_s - self.sent_s


@dataclass(frozen=True)
class IssueRules:
    """How calls may issue: the mode, the ooo window (steps) and the calls in flight at most."""

    mode: Mode = Mode.LOCKSTEP
    window_steps: int = 8
    concurrency: int = 8


SendFn = Callable[[int, Call], Awaitable[Reply]]
TickFn = Callable[[int, NextCalls], Awaitable[None]]


def next_calls(hints: Sequence[Hint], clock: int) -> dict[str, float | None]:
    """``hints`` as one tick at ``clock``: the latest per agent wins, and next calls before
    ``clock`` are raised to it (overdue: expected now)."""
    out: dict[str, float | None] = {}
    for hint in hints:
        out[hint.agent] = None if hint.next_step is None else float(max(hint.next_step, clock))
    return out


class Driver:
    """Sends one trace's calls under :class:`IssueRules`; create one per run.

    Args:
        calls: the trace's calls, in file order.
        hints: the trace's hints, handed to ``tick`` per the timing rule.
        rules: lockstep or ooo, the ooo window in steps, and the calls in flight at most.
        now: the clock of ``ready_s``/``sent_s``/``done_s``, in seconds.
    """

    def __init__(
        self,
        calls: tuple[Call, ...],
        hints: Sequence[Hint],
        *,
        rules: IssueRules,
        now: Callable[[], float],
    ) -> None:
        if rules.concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {rules.concurrency}")
        self.calls, self.now = calls, now
        self._gate = IssueGate(calls, mode=rules.mode, window_steps=rules.window_steps)
        self._feed = HintFeed(hints, calls)
        self._slots = asyncio.Semaphore(rules.concurrency)
        self._clock: int | None = None

    async def run(
        self,
        send: SendFn,
        *,
        tick: TickFn | None = None,
        on_done: Callable[[CallOutcome], None] | None = None,
    ) -> list[CallOutcome]:
        """Send every call once; returns the outcomes in trace order.

        Args:
            send: runs call ``index`` and returns its reply (never raises for a failed call).
            tick: receives the due hints when the clock moves (None: no ticks, as for a
                stock server).
            on_done: called with each outcome as it completes (progress).
        """
        outcomes: list[CallOutcome | None] = [None] * len(self.calls)
        in_flight: set[asyncio.Task[CallOutcome]] = set()
        while True:
            in_flight |= await self._release(send, tick)
            if not in_flight:
                break
            finished, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for outcome in sorted((task.result() for task in finished), key=lambda o: o.index):
                outcomes[outcome.index] = outcome
                self._gate.complete(outcome.index)
                self._feed.complete(outcome.index)
                if on_done is not None:
                    on_done(outcome)
        missing = [self.calls[i].id for i, outcome in enumerate(outcomes) if outcome is None]
        if missing:
            raise RuntimeError(f"calls never became ready: {missing[:5]}")
        return [outcome for outcome in outcomes if outcome is not None]

    async def _release(self, send: SendFn, tick: TickFn | None) -> set[asyncio.Task[CallOutcome]]:
        """Tasks for the calls the rules release now; first the tick if the clock moved."""
        ready = self._gate.ready()
        if ready and (self._clock is None or self._gate.current_step > self._clock):
            self._clock = self._gate.current_step
            due = next_calls(self._feed.due(self._clock), self._clock)
            if due and tick is not None:
                await tick(self._clock, due)
        ready_s = self.now()
        return {asyncio.create_task(self._run_one(send, index, ready_s)) for index in ready}

    async def _run_one(self, send: SendFn, index: int, ready_s: float) -> CallOutcome:
        async with self._slots:  # FIFO: waiting calls get slots in the order they were released
            sent_s = self.now()
            reply = await send(index, self.calls[index])
            return CallOutcome(index, ready_s, sent_s, self.now(), reply)
