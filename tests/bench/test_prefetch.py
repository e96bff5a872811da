"""ScaleSim's prefetch honours the runtime planner's guard on SGLang's real radix tree."""

from __future__ import annotations

import pytest
from scalesim.bench.costmodel import CostModel
from scalesim.bench.replay.host import HostTier
from scalesim.bench.replay.policies import ScaleSimRanking
from scalesim.bench.replay.prefetch import Prefetcher
from scalesim.bench.replay.prompts import PromptBook
from scalesim.bench.replay.radix import RadixTier
from scalesim.bench.trace import Call, Hint, Segment, Trace, TraceHeader

from scalesim.runtime import RuntimeConfig, ScaleSimRuntime


def _setup(a_next: int, b_next: int) -> tuple[Prefetcher, RadixTier, PromptBook]:
    """a's prefix evicted to the host by b's; the device holds b's 10 tokens only."""
    calls = [
        Call("c0", "a", 0, (Segment("persona/a", 8), Segment("obs/c0", 2)), 1),
        Call("c1", "b", 0, (Segment("persona/b", 8), Segment("obs/c1", 2)), 1),
    ]
    hints = [Hint(0, "a", a_next), Hint(0, "b", b_next)]
    trace = Trace(TraceHeader("guard", 2, 8), (*calls, *hints))
    book = PromptBook(trace, token_scale=1)
    runtime = ScaleSimRuntime(RuntimeConfig(prefetch_window=2.0))
    ranking = ScaleSimRanking(book, hints, runtime=runtime)
    radix = RadixTier(10, strategy=ranking.tree_strategy(), on_path=ranking.on_insert)
    host = HostTier(100, ranking=ranking)
    for index, call in enumerate(calls):
        admission = radix.admit(book.prompts[index].tokens, index)
        assert admission is not None
        radix.release(admission)
        host.write_through(book.prompts[index], now=float(index), owner=(call.agent, 8))
    prefetcher = Prefetcher(
        book, runtime=runtime, owned={"a": 8, "b": 8}, tiers=(radix, host), cost=CostModel()
    )
    prefetcher.record_call("a", 0)
    prefetcher.record_call("b", 1)
    for index in range(len(calls)):
        ranking.finish(index)
    ranking.advance(1.0)  # applies both step-0 hints
    return prefetcher, radix, book


@pytest.mark.parametrize(("a_next", "b_next", "fetched"), [(3, 2, False), (2, 3, True)])
def test_prefetch_evicts_only_strictly_farther_prefixes(
    a_next: int, b_next: int, fetched: bool
) -> None:
    prefetcher, radix, book = _setup(a_next, b_next)
    moved = prefetcher.plan(budget_bytes=10**12)
    a_resident = radix.resident(book.prompts[0].tokens[:8])
    b_resident = radix.resident(book.prompts[1].tokens[:8])
    assert (bool(moved), a_resident, b_resident) == (
        fetched,
        8 if fetched else 0,
        0 if fetched else 8,
    )
