"""The ``queue_order`` hook on SGLang's real ``SchedulePolicy.calc_priority``, with real
``Req`` objects and the real radix cache (the replay's ``RadixTier``, Python core, CPU pools)."""

from __future__ import annotations

from array import array
from typing import Any

import pytest
from scalesim.bench.replay.radix import RadixTier
from scalesim.patches.registration import register_and_verify
from scalesim.patches.table import SCHEDULER_HOOKS
from sglang.srt.managers.schedule_batch import Req
from sglang.srt.managers.schedule_policy import SchedulePolicy
from sglang.srt.sampling.sampling_params import SamplingParams

from scalesim.runtime import RuntimeConfig, ScaleSimRuntime, owner_key
from scalesim.sglang.eviction import ScaleSimStrategy

NS = "sim"
_CALC_PRIORITY = "sglang.srt.managers.schedule_policy.SchedulePolicy.calc_priority"


@pytest.fixture(scope="module", autouse=True)
def hooked() -> None:
    register_and_verify([spec for spec in SCHEDULER_HOOKS if spec.target == _CALC_PRIORITY])


def _policy(queue_order: str, *, schedule: str = "fcfs", cached: int = 0) -> SchedulePolicy:
    """A policy over a real cache that holds the prompt ``0 .. cached-1``."""
    runtime = ScaleSimRuntime(RuntimeConfig.from_mapping({"queue_order": queue_order}))
    runtime.advance(NS, 50.0)
    tier = RadixTier(64, strategy=ScaleSimStrategy(runtime), on_path=lambda *args: None)
    if cached:
        admission = tier.admit(array("q", range(cached)), 0)
        assert admission is not None
        tier.release(admission)
    return SchedulePolicy(schedule, tier.cache, False, False, True)


def _req(rid: str, clock: float | None, *, first_token: int = 0) -> Any:
    tokens = array("q", range(first_token, first_token + 6))
    req = Req(rid, "", tokens, SamplingParams(max_new_tokens=1))
    req.scalesim_owner = owner_key(NS, rid)  # as the request hook tags it
    req.scalesim_clock = clock
    return req


def _queue() -> list[Any]:
    return [_req("a", 49.0), _req("b", 20.0), _req("c", None), _req("d", 35.0), _req("e", 20.0)]


def test_lag_puts_the_request_furthest_behind_first() -> None:
    queue = _queue()
    _policy("lag").calc_priority(queue)
    assert [req.rid for req in queue] == ["b", "e", "d", "a", "c"]


def test_arrival_leaves_sglangs_order() -> None:
    queue = _queue()
    _policy("arrival").calc_priority(queue)
    assert [req.rid for req in queue] == ["a", "b", "c", "d", "e"]


def test_equal_lags_keep_sglangs_policy_order() -> None:
    """Longest prefix match puts the cached prompt first; the stable sort by lag keeps it there
    among equal lags (and the request at the clock goes last)."""
    queue = [_req("new", 50.0), _req("uncached", 30.0, first_token=100), _req("cached", 30.0)]
    _policy("lag", schedule="lpm", cached=6).calc_priority(queue)
    assert [req.rid for req in queue] == ["cached", "uncached", "new"]
