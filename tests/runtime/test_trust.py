"""Learned trust in predictions: exact hints rank by distance, worthless ones fall back to LRU."""

from __future__ import annotations

import pytest

from scalesim.distance.rank import KNOWN, NO_CALL, UNKNOWN
from scalesim.runtime import (
    AgentMeta,
    DistanceUpdate,
    HintTrustMode,
    RuntimeConfig,
    ScaleSimRuntime,
    owner_key,
)


def _calls(
    runtime: ScaleSimRuntime, agent: str, steps: list[float], hint: float, namespace: str = "town"
) -> None:
    """``agent`` calls at ``steps``, each time predicting its next call ``hint`` steps later."""
    for step in steps:
        runtime.observe(AgentMeta(agent, namespace, clock=step, next_call=step + hint))


def test_exact_predictions_keep_full_trust() -> None:
    """Agents calling in turn, each exactly when predicted: every pair is ordered right."""
    runtime = ScaleSimRuntime()
    for step in range(40):
        runtime.observe(AgentMeta(f"a{step % 4}", "town", clock=float(step), next_call=step + 4.0))
    assert runtime.trust.weight(owner_key("town", "a0"), "town") == 1.0


def _busy_and_idle(runtime: ScaleSimRuntime, steps: int) -> None:
    """``busy`` calls every step, ``idle`` every 10th, and both predict the other's pace: the
    predictions order every pair wrongly, recency almost every pair rightly."""
    for step in range(steps):
        runtime.observe(AgentMeta("busy", "town", clock=float(step), next_call=step + 10.0))
        if step % 10 == 5:
            runtime.observe(AgentMeta("idle", "town", clock=float(step), next_call=step + 1.0))


def test_predictions_worse_than_recency_lose_trust() -> None:
    runtime = ScaleSimRuntime()
    _busy_and_idle(runtime, 60)
    assert runtime.trust.weight(owner_key("town", "busy"), "town") < 0.1


def test_untrusted_agents_rank_in_lru_order_whatever_they_predict() -> None:
    """With worthless predictions the order is LRU's: ``idle``, used longest ago, goes first
    although it claims the nearest call; with full trust its claim would keep it."""
    busy, idle = owner_key("town", "busy"), owner_key("town", "idle")
    runtime = ScaleSimRuntime()
    _busy_and_idle(runtime, 60)
    assert runtime.rank_key([idle], 0.0) < runtime.rank_key([busy], 0.0)
    full = ScaleSimRuntime(RuntimeConfig(hint_trust=HintTrustMode.FULL))
    _busy_and_idle(full, 60)
    assert full.rank_key([idle], 0.0) > full.rank_key([busy], 0.0)


def test_predictions_off_by_a_steady_factor_are_rescaled() -> None:
    """Every agent expects its next call twice as soon as it comes (a biased estimator): the
    runtime learns the pace and ranks by when calls really come. Without it every prediction
    went overdue and ranks fell back to recency, which in this round robin keeps the agent
    that just called and evicts the next caller first."""
    runtime = ScaleSimRuntime()
    for step in range(40):
        runtime.observe(AgentMeta(f"a{step % 4}", "town", clock=float(step), next_call=step + 2.0))
    agents = [owner_key("town", f"a{i}") for i in range(4)]  # a0 calls next (step 40), a3 last
    assert runtime.trust.pace(agents[0], "town") == pytest.approx(2.0)
    ranks = [runtime.rank_key([agent], 0.0) for agent in agents]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == 4


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


def test_a_call_trailing_the_clock_is_scored_at_its_own_clock() -> None:
    """Regression: out of order, a call that trails the namespace's clock (another agent ran
    ahead within the window) was scored as if it came at that clock: its exact prediction read
    as late and its recency started later than it did."""
    runtime = ScaleSimRuntime()
    _calls(runtime, "late", [0.0], hint=7.0)
    runtime.observe(AgentMeta("lead", "town", clock=10.0, next_call=11.0))
    runtime.observe(AgentMeta("late", "town", clock=7.0, next_call=12.0))
    assert runtime.trust.last_call(owner_key("town", "late")) == 7.0
    assert runtime.clock_of("town") == 10.0


@pytest.mark.parametrize("mode", [HintTrustMode.LEARNED, HintTrustMode.FULL])
def test_an_agent_that_called_despite_no_call_ranks_by_its_calls_after(mode: HintTrustMode) -> None:
    """A simulation that sends null for "not known yet" (a workflow role between instances):
    once ``role`` called while its prediction said no call, its later nulls rank it as an agent
    without a prediction (by its calls: 5 steps apart so far), not below everything as
    ``other``'s still do. With full trust every null keeps its word."""
    runtime = ScaleSimRuntime(RuntimeConfig(hint_trust=mode))
    runtime.predict("flow", {"role": None, "other": None})
    runtime.observe(AgentMeta("role", "flow", clock=5.0))  # came despite "no call"
    runtime.predict("flow", {"role": None})
    role, other = owner_key("flow", "role"), owner_key("flow", "other")
    learned = mode is HintTrustMode.LEARNED
    role_rank, other_rank = runtime.rank_key([role], 0.0), runtime.rank_key([other], 0.0)
    assert role_rank.remaining(0.0) == (5.0 if learned else None)
    assert role_rank.known == (KNOWN if learned else NO_CALL)
    assert other_rank.known == NO_CALL
    assert (role_rank > other_rank) is learned


@pytest.mark.parametrize("mode", [HintTrustMode.LEARNED, HintTrustMode.FULL])
def test_agents_expecting_no_call_rank_by_their_own_calls_among_themselves(
    mode: HintTrustMode,
) -> None:
    """Both agents say "no call" (a follower no post has reached yet): ``hourly`` usually
    calls every 2 steps, ``daily`` every 8; ``hourly`` is likelier back first, so it ranks
    nearer although ``daily`` called last. Both stay below an agent merely unknown; with full
    trust every "no call" ranks alike (least recent use decides)."""
    runtime = ScaleSimRuntime(RuntimeConfig(hint_trust=mode))
    _calls(runtime, "hourly", [0.0, 2.0, 4.0], hint=2.0, namespace="net")
    runtime.observe(AgentMeta("hourly", "net", clock=6.0, no_call=True))
    _calls(runtime, "daily", [0.0], hint=8.0, namespace="net")
    runtime.observe(AgentMeta("daily", "net", clock=8.0, no_call=True))
    runtime.observe(AgentMeta("fresh", "net", clock=8.0))
    hourly, daily = (owner_key("net", agent) for agent in ("hourly", "daily"))
    ranks = {owner: runtime.rank_key([owner], 0.0) for owner in (hourly, daily)}
    assert {rank.known for rank in ranks.values()} == {NO_CALL}
    learned = mode is HintTrustMode.LEARNED
    assert (ranks[hourly] > ranks[daily]) is learned
    assert ranks[hourly].owner_rank == ranks[daily].owner_rank or learned
    assert runtime.rank_key([owner_key("net", "fresh")], 0.0) > max(ranks.values())


def test_an_agent_without_predictions_ranks_by_its_own_calls() -> None:
    """A simulation that estimates only some agents: ``chatty`` never sends a prediction but
    has called every 2 steps; it ranks at its usual interval, nearer than ``planner``, hinted
    10 steps ahead, where it ranked below every hinted agent before. Once away longer than its
    interval it ranks by how long it has been away; withdrawn, by recency alone (stock)."""
    runtime = ScaleSimRuntime()
    for step in (0.0, 2.0, 4.0, 6.0):
        runtime.observe(AgentMeta("chatty", "town", clock=step))
    runtime.observe(AgentMeta("planner", "town", clock=6.0, next_call=16.0))
    chatty, planner = owner_key("town", "chatty"), owner_key("town", "planner")
    assert runtime.rank_key([chatty], 0.0).remaining(0.0) == 2.0
    assert runtime.rank_key([chatty], 0.0) > runtime.rank_key([planner], 0.0)
    runtime.advance("town", 18.0)
    assert runtime.rank_key([chatty], 0.0).remaining(0.0) == 12.0
    runtime.apply(DistanceUpdate("town", 18.0, None, {}, unknown=("chatty",)))
    assert runtime.rank_key([chatty], 0.0).known == UNKNOWN


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
