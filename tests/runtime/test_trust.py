"""Learned trust in predictions: exact hints rank by distance, worthless ones fall back to LRU."""

from __future__ import annotations

import pytest

from scalesim.runtime import AgentMeta, HintTrustMode, RuntimeConfig, ScaleSimRuntime, owner_key
from scalesim.runtime.trust import HintTrust


def _calls(runtime: ScaleSimRuntime, agent: str, steps: list[float], hint: float) -> None:
    """``agent`` calls at ``steps``, each time predicting its next call ``hint`` steps later."""
    for step in steps:
        runtime.observe(AgentMeta(agent, "town", clock=step, next_call=step + hint))


def test_exact_predictions_keep_full_trust() -> None:
    trust = HintTrust()
    trust.seen("t|a", "t", at=0.0)
    for step in range(1, 20):
        trust.called("t|a", "t", at=float(step * 3), predicted=float(step * 3), predicted_at=0.0)
    assert trust.weight("t|a", "t") == 1.0


def test_predictions_worse_than_recency_lose_trust() -> None:
    """An agent calling every 2 steps while predicting 40 ahead: its hints are noise."""
    runtime = ScaleSimRuntime()
    _calls(runtime, "liar", [float(step) for step in range(0, 40, 2)], hint=40.0)
    assert runtime.trust.weight(owner_key("town", "liar"), "town") < 0.1


def test_untrusted_agents_rank_in_lru_order_whatever_they_predict() -> None:
    """With worthless predictions the order is LRU's: the agent used longest ago goes first,
    although it claims the nearest call."""
    runtime = ScaleSimRuntime()
    for step in range(0, 40, 2):  # both call every 2 steps and always predict wrongly
        runtime.observe(AgentMeta("old", "town", clock=float(step), next_call=step + 50.0))
        runtime.observe(AgentMeta("new", "town", clock=step + 1.0, next_call=step + 90.0))
    runtime.observe(AgentMeta("old", "town", clock=40.0, next_call=41.0))
    runtime.observe(AgentMeta("new", "town", clock=45.0, next_call=200.0))
    old, new = owner_key("town", "old"), owner_key("town", "new")
    assert runtime.rank_key([old], 0.0) < runtime.rank_key([new], 0.0)
    full = ScaleSimRuntime(RuntimeConfig(hint_trust=HintTrustMode.FULL))
    for meta in (
        AgentMeta("old", "town", clock=40.0, next_call=41.0),
        AgentMeta("new", "town", clock=45.0, next_call=200.0),
    ):
        full.observe(meta)
    assert full.rank_key([old], 0.0) > full.rank_key([new], 0.0)


def test_an_overdue_prediction_stops_pinning_its_agent() -> None:
    """Regression: a predicted call that never came kept its agent ranked nearest of all
    (the more overdue, the nearer), crowding out agents about to call."""
    runtime = ScaleSimRuntime()
    _calls(runtime, "steady", [0.0, 10.0, 20.0, 30.0], hint=10.0)  # exact so far
    runtime.observe(AgentMeta("ghost", "town", clock=30.0, next_call=31.0))
    runtime.observe(AgentMeta("soon", "town", clock=30.0, next_call=38.0))
    runtime.advance("town", 36.0)  # ghost's call is 5 steps overdue; soon's is 2 steps ahead
    ghost, soon = owner_key("town", "ghost"), owner_key("town", "soon")
    assert runtime.rank_key([ghost], 0.0) < runtime.rank_key([soon], 0.0)


def test_a_client_without_clock_keeps_full_trust() -> None:
    runtime = ScaleSimRuntime()
    for _ in range(5):
        runtime.observe(AgentMeta("a", "town", next_call=100.0))
    assert runtime.trust.weight(owner_key("town", "a"), "town") == 1.0


def test_dropping_a_namespace_forgets_its_trust_records() -> None:
    runtime = ScaleSimRuntime()
    _calls(runtime, "a", [0.0, 1.0], hint=1.0)
    runtime.observe(AgentMeta("b", "net", clock=0.0, next_call=1.0))
    runtime.drop_namespace("town")
    assert len(runtime.trust) == 1 and runtime.trust.knows(owner_key("net", "b"))


@pytest.mark.parametrize("mode", ["learned", "full"])
def test_hint_trust_is_a_config_key(mode: str) -> None:
    config = RuntimeConfig.from_mapping({"hint_trust": mode})
    assert config.hint_trust is HintTrustMode(mode)
