"""The queue order by lag (``scalesim.runtime.queue``): exact orders and its invariants."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scalesim.config import ConfigError
from scalesim.runtime import QueuedCall, QueueOrder, RuntimeConfig, ScaleSimRuntime, lag_order


def _runtime(clocks: dict[str, float]) -> ScaleSimRuntime:
    runtime = ScaleSimRuntime()
    for namespace, clock in clocks.items():
        runtime.advance(namespace, clock)
    return runtime


def test_the_call_furthest_behind_its_namespace_goes_first() -> None:
    runtime = _runtime({"town": 40.0, "web": 7.0})
    calls = [
        QueuedCall("town", 39.0),  # lags 1
        QueuedCall("town", 30.0),  # lags 10
        QueuedCall("web", 1.0),  # lags 6
        QueuedCall("town", None),  # no clock: lags 0
        QueuedCall("unknown", 0.0),  # unknown namespace: lags 0
        QueuedCall("town", 30.0),  # lags 10, came later
    ]
    assert lag_order(runtime, calls) == [1, 5, 2, 0, 3, 4]


def test_queue_order_is_a_config_key_with_two_values() -> None:
    assert RuntimeConfig().queue_order is QueueOrder.ARRIVAL
    assert RuntimeConfig.from_mapping({"queue_order": "lag"}).queue_order is QueueOrder.LAG
    with pytest.raises(ConfigError, match="queue_order"):
        RuntimeConfig.from_mapping({"queue_order": "priority"})


@given(
    frontier=st.floats(0, 1000),
    clocks=st.lists(st.one_of(st.none(), st.floats(0, 1000)), max_size=30),
)
def test_lag_order_is_a_stable_permutation_by_lag(
    frontier: float, clocks: list[float | None]
) -> None:
    runtime = _runtime({"sim": frontier})
    calls = [QueuedCall("sim", clock) for clock in clocks]
    order = lag_order(runtime, calls)
    assert sorted(order) == list(range(len(calls)))
    lags = [0.0 if clock is None else max(0.0, frontier - clock) for clock in clocks]
    for first, second in itertools.pairwise(order):
        assert lags[first] > lags[second] or (lags[first] == lags[second] and first < second)
