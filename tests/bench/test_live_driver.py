"""The live driver's issue order, ticks and concurrency, against a fake ``send`` (no server).

The fake stands in for the network only: each call takes a chosen number of event-loop turns,
so completions interleave deterministically, and every send, completion and tick is logged.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from scalesim.bench.live.driver import (
    CallOutcome,
    Driver,
    IssueRules,
    NextCalls,
    Reply,
    next_calls,
)
from scalesim.bench.live.report import Counts, comparison, percentile, summarize
from scalesim.bench.replay.result import Mode
from scalesim.bench.trace import Call, Hint, Segment

LOCKSTEP = IssueRules(Mode.LOCKSTEP)
OOO = IssueRules(Mode.OOO, window_steps=8)


def make_call(
    call_id: str, agent: str, step: int, *, deps: tuple[str, ...] = (), n_tokens: int = 10
) -> Call:
    prompt = (Segment(f"persona/{agent}", n_tokens), Segment(f"obs/{call_id}", 2))
    return Call(call_id, agent, step, prompt, output_len=3, deps=deps)


@dataclass
class FakeNetwork:
    """Logs ("send"|"done", call id) and ("tick", clock, map); call i takes turns[id] yields."""

    calls: tuple[Call, ...]
    turns: dict[str, int] = field(default_factory=dict)
    failing: frozenset[str] = frozenset()
    log: list[tuple[object, ...]] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0

    async def send(self, index: int, call: Call) -> Reply:
        self.log.append(("send", call.id))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        for _ in range(self.turns.get(call.id, 1)):
            await asyncio.sleep(0)
        self.in_flight -= 1
        self.log.append(("done", call.id))
        if call.id in self.failing:
            return Reply(error="boom")
        return Reply(call.prompt_tokens, call.prompt[0].n_tokens, call.output_len)

    async def tick(self, clock: int, due: NextCalls) -> None:
        self.log.append(("tick", clock, dict(due)))

    def position(self, kind: str, call_id: str) -> int:
        return self.log.index((kind, call_id))

    def run(self, hints: Sequence[Hint] = (), *, rules: IssueRules) -> list[CallOutcome]:
        clock = itertools.count()
        driver = Driver(self.calls, hints, rules=rules, now=lambda: float(next(clock)))
        return asyncio.run(driver.run(self.send, tick=self.tick))


def town() -> tuple[Call, ...]:
    """a0 is slow at step 0; a1 and a2 talk (c3 answers c2); a3 comes back far later."""
    return (
        make_call("c0", "a0", 0),
        make_call("c1", "a1", 0),
        make_call("c2", "a2", 1),
        make_call("c3", "a1", 2, deps=("c2",)),
        make_call("c4", "a0", 3),
        make_call("c5", "a3", 30),
    )


def test_lockstep_sends_a_step_only_after_every_earlier_call_completed() -> None:
    calls = town()
    network = FakeNetwork(calls, turns={"c0": 20})
    outcomes = network.run(rules=LOCKSTEP)
    assert [outcome.index for outcome in outcomes] == list(range(len(calls)))
    for later in calls:
        for earlier in calls:
            if earlier.step < later.step:
                assert network.position("done", earlier.id) < network.position("send", later.id)
    sends = [entry[1] for entry in network.log if entry[0] == "send"]
    assert sends == ["c0", "c1", "c2", "c3", "c4", "c5"]


def test_ooo_runs_ahead_of_a_slow_call_but_keeps_deps_agent_order_and_window() -> None:
    calls = town()
    network = FakeNetwork(calls, turns={"c0": 20})
    network.run(rules=OOO)
    # c2 (step 1) and c3 (step 2) need not wait for the slow c0 of step 0 ...
    assert network.position("send", "c3") < network.position("done", "c0")
    # ... but c3 answers c2, c4 is a0's next call, c5 is beyond the 8-step window of step 0.
    assert network.position("done", "c2") < network.position("send", "c3")
    assert network.position("done", "c0") < network.position("send", "c4")
    assert network.position("done", "c0") < network.position("send", "c5")


def test_a_tick_carries_the_hints_of_earlier_steps_before_the_step_is_sent() -> None:
    calls = town()
    hints = (
        Hint(0, "a0", 3),
        Hint(0, "a3", 1),
        Hint(1, "a2", None),
        Hint(1, "a3", 1),  # wrong (a3 comes at 30): overdue at clock 2, sent as 2
        Hint(2, "a1", 9),
        Hint(2, "a1", 10),  # the later hint of one step wins
        Hint(30, "a3", None),  # at the last call's step: never sent
    )
    network = FakeNetwork(calls)
    network.run(hints, rules=LOCKSTEP)
    ticks = [(i, entry) for i, entry in enumerate(network.log) if entry[0] == "tick"]
    assert [entry for _, entry in ticks] == [
        ("tick", 1, {"a0": 3.0, "a3": 1.0}),
        ("tick", 2, {"a2": None, "a3": 2.0}),
        ("tick", 3, {"a1": 10.0}),
    ]
    for position, (_, clock, _) in ticks:
        step_calls = [call.id for call in calls if call.step == clock]
        assert all(position < network.position("send", call_id) for call_id in step_calls)


def test_ooo_holds_a_hint_until_its_agent_is_done_with_the_step() -> None:
    """a0's step-0 call is slow; the clock runs ahead with a1 and a2. a0's step-0 hint goes
    out with the first tick after that call completed, not while a0 still has it to finish."""
    calls = town()
    network = FakeNetwork(calls, turns={"c0": 20})
    network.run((Hint(0, "a0", 3), Hint(0, "a1", 2)), rules=OOO)
    ticks = [entry for entry in network.log if entry[0] == "tick"]
    assert ticks[0] == ("tick", 2, {"a1": 2.0})
    a0_tick = next(
        i
        for i, entry in enumerate(network.log)
        if entry[0] == "tick" and isinstance(entry[2], dict) and "a0" in entry[2]
    )
    assert network.position("done", "c0") < a0_tick < network.position("send", "c4")


def test_a_tick_raises_overdue_next_calls_to_the_clock_and_keeps_each_agents_latest() -> None:
    hints = (Hint(0, "a3", 1), Hint(0, "a4", 7), Hint(2, "a3", 9), Hint(3, "a5", None))
    assert next_calls(hints, 4) == {"a3": 9.0, "a4": 7.0, "a5": None}
    assert next_calls(hints[:2], 4) == {"a3": 4.0, "a4": 7.0}


def test_concurrency_bounds_calls_in_flight() -> None:
    calls = tuple(make_call(f"c{i}", f"a{i}", 0) for i in range(6))
    network = FakeNetwork(calls, turns={f"c{i}": 3 for i in range(6)})
    network.run(rules=IssueRules(Mode.LOCKSTEP, concurrency=2))
    assert network.peak == 2
    sends = [entry[1] for entry in network.log if entry[0] == "send"]
    assert sends == [f"c{i}" for i in range(6)]  # in trace order


def test_a_failed_call_completes_and_the_run_goes_on() -> None:
    calls = town()
    network = FakeNetwork(calls, failing=frozenset({"c2"}))
    outcomes = network.run(rules=LOCKSTEP)
    assert [o.reply.error for o in outcomes].count("boom") == 1
    assert all(("send", call.id) in network.log for call in calls)
    result = summarize(
        outcomes, started_s=0.0, counts=Counts(sum(c.prompt_tokens for c in calls), 0, 0, 0, 1.0)
    )
    assert (result.requests, result.errors) == (6, 1)
    good = [call for call in calls if call.id != "c2"]
    assert result.prompt_tokens == sum(call.prompt_tokens for call in good)
    assert result.recomputed_tokens == result.prompt_tokens - result.cached_tokens == 2 * 5
    assert result.makespan_s == max(outcome.done_s for outcome in outcomes)


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        FakeNetwork(town()).run(rules=IssueRules(Mode.LOCKSTEP, concurrency=0))


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 99) == pytest.approx(3.97)
    assert percentile([5.0], 99) == 5.0


def test_comparison_states_live_ratios_and_the_replays_room() -> None:
    document = {
        "results": {
            "stock": {"recomputed_tokens": 1000, "makespan_s": 90.0},
            "scalesim": {"recomputed_tokens": 600, "makespan_s": 60.0},
        },
        "replay_prediction": {
            "results": {
                "lru": {"recomputed_tokens": 1000},
                "scalesim": {"recomputed_tokens": 550},
                "belady": {"recomputed_tokens": 500},
                "infinite": {"recomputed_tokens": 300},
            }
        },
    }
    assert comparison(document) == [
        "live: ScaleSim recomputed 0.60x stock's prompt tokens and finished 1.50x as fast"
        " (stock makespan / ScaleSim's)",
        "replay: recomputed tokens saved vs LRU: scalesim 45%, belady 50%, infinite 70%",
    ]
    document["results"] = {"stock+affinity": document["results"]["stock"]}  # a cluster run
    assert comparison(document) == [
        "replay: recomputed tokens saved vs LRU: scalesim 45%, belady 50%, infinite 70%"
    ]
