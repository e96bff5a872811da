"""How far to trust each agent's predicted next calls, learned from how they turned out.

Who calls it: the runtime. When an agent calls, it is by definition nearer than every agent
that did not call then; the runtime asks, for a few such rivals, whether ranking by prediction
(time left until the predicted call, an overdue one taken as ranks take it at full trust) and
ranking by recency (LRU: the agent used longer ago goes first) each put the caller ahead. Scoring
the order ranks really use matters: counting an overdue prediction as "due now" credited
inverted hints (every call late against its prediction) with beating recency, and ScaleSim
then recomputed ~7% more than LRU with them. The share of pairs each order got right, pooled
from the agent toward its namespace, sets ``weight`` in [0, 1]: predictions clearly better than
recency earn 1, predictions no better than recency 0. Ranks then use the time left until the call as
``weight * (prediction - now) + (1 - weight) * (now - last call)``: at 1 the order is the
predictions', at 0 exactly LRU's. A wrong estimate thus costs little and a right one keeps its
full value, whatever the workload's own recency pattern.

Estimators are often biased the same way for every call (durations planned too short): each
agent's pace, the distances its calls really took over the distances predicted (decayed sums
pooled toward its namespace, bounded by PACE_BOUNDS; per agent, as a simulation may estimate
one kind of agent well and another badly), stretches every prediction from the time it was
made before it is scored or ranked, so hints that expect every call twice as soon rank as well
as exact ones instead of all going overdue. The prediction scored is the one in force at the
call: a simulation that re-sends "a mean gap from now" every tick for an agent called at random
reads as calling far sooner than predicted (a known limitation, measured in README).

Early and late predictions differ: a call that came before its predicted time only counts in
the pairs; a predicted time that passed without the call counts as "now", trusted less the
longer it is overdue compared with how far off this scope's predictions usually land, so a call
that was expected and never came stops pinning its agent. "No call expected" is a prediction
too: once an agent called while its prediction said no call (a simulation that sends null for
"not known yet"), its later nulls rank it as an agent without a prediction instead of below
every agent. Agents whose "no call" still stands rank below every other agent, among themselves
by their own calls (the one that usually calls sooner goes last): "none foreseen" is often
"not foreseeable yet" (a post that will reach a follower), and an agent that calls every hour is
likelier back soon than one that called once a day (diffusion, 300 agents, device 0.25:
recomputed 0.6% less than by recency, with and without a host tier).

An agent without a prediction (never sent one, or its last went stale) ranks by its own calls:
at its usual interval between calls, or at how long it has been away if that is longer. A
simulation that can estimate only some of its agents then does not have every other agent's
state evicted before the hinted agents' state for calls hours away (social, exact hints for
half of the agents: 1.15x LRU's excess recompute with those ranked below every hinted agent,
0.70x so).

Invariants: pure arithmetic on the inputs (namespace clocks, never a wall clock; rivals taken
in a fixed rotation), so every tensor-parallel rank learns the same weights; memory is one
small record per agent with a prediction or a call, dropped with the agent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

#: Decay of an agent's own record per scored call.
AGENT_KEEP = 0.8
#: Decay of a namespace's pooled record per scored call.
NAMESPACE_KEEP = 0.995
#: How many of its namespace's average calls an agent's record starts from.
PRIOR_CALLS = 4.0
#: Rivals compared with each caller.
RIVALS = 8
#: Bounds of the learned pace (actual over predicted distance), so that a few wild calls
#: cannot stretch or squeeze every prediction without limit.
PACE_BOUNDS = (1 / 16, 16.0)
#: How much more often predictions must order pairs right than recency to earn full trust
#: (and less often to lose it all); in between, trust grows linearly.
MARGIN = 0.05

#: The prediction in force for an owner as (predicted time, when it was made), None: none.
PredictionOf = Callable[[str], "tuple[float, float] | None"]


@dataclass
class Fit:
    """Decayed sums over scored calls."""

    calls: float = 0.0
    miss: float = 0.0  # sum of |actual - predicted| (predictions at the learned pace)
    ahead: float = 0.0  # sum of predicted distances (from when each prediction was made)
    took: float = 0.0  # sum of the distances the calls really came at
    pairs: float = 0.0  # caller-rival pairs compared
    hint_right: float = 0.0  # pairs the predictions ordered right (ties: half)
    recency_right: float = 0.0  # pairs recency ordered right (ties: half)

    def add(
        self,
        miss: float,
        distances: tuple[float, float],
        pairs: tuple[int, float, float],
        *,
        keep: float,
    ) -> None:
        self.calls = self.calls * keep + 1.0
        self.miss = self.miss * keep + miss
        self.ahead = self.ahead * keep + distances[0]
        self.took = self.took * keep + distances[1]
        self.pairs = self.pairs * keep + pairs[0]
        self.hint_right = self.hint_right * keep + pairs[1]
        self.recency_right = self.recency_right * keep + pairs[2]


@dataclass
class AgentRecord:
    """One agent's last call (or first sighting) and the fit of its predictions."""

    last_call: float
    fit: Fit = field(default_factory=Fit)
    broke_no_call: bool = False  # it called while its prediction said no call
    gaps: float = 0.0  # decayed sum of the intervals between its calls
    intervals: float = 0.0  # decayed count of them


@dataclass
class NamespaceRecord:
    """One simulation's pooled fit and the rotation its rivals are drawn from."""

    fit: Fit = field(default_factory=Fit)
    members: list[str] = field(default_factory=list)
    cursor: int = 0


class HintTrust:
    """Per-agent trust in predictions, and the blended next-call time ranks are built from."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentRecord] = {}
        self._namespaces: dict[str, NamespaceRecord] = {}

    def __len__(self) -> int:
        return len(self._agents)

    def seen(self, owner: str, namespace: str, *, at: float) -> None:
        """``owner`` got a prediction at ``at``: its recency starts there if it never called."""
        if owner not in self._agents:
            self._add(owner, namespace, at)

    def called(
        self,
        owner: str,
        namespace: str,
        *,
        at: float,
        predicted: tuple[float, float] | None,
        prediction_of: PredictionOf,
        despite_no_call: bool = False,
    ) -> None:
        """``owner`` called at ``at``; ``predicted`` was its prediction in force as (predicted
        time, when it was made), None: none; ``despite_no_call``: it said no call.

        Scored only when time has passed since the agent's last call: a client that sends no
        clock teaches nothing and keeps full trust.
        """
        record = self._agents.get(owner)
        if record is None:
            self._add(owner, namespace, at)
            record = self._agents[owner]
        space = self._namespaces[namespace]
        record.broke_no_call |= despite_no_call
        if at > record.last_call and predicted is not None:
            paced = _paced(predicted, _pooled(record.fit, space.fit).pace)
            pairs = self._rivals_scored(owner, record, space, at, paced, prediction_of)
            distances = (max(0.0, predicted[0] - predicted[1]), max(0.0, at - predicted[1]))
            record.fit.add(abs(at - paced), distances, pairs, keep=AGENT_KEEP)
            space.fit.add(abs(at - paced), distances, pairs, keep=NAMESPACE_KEEP)
        if at > record.last_call:
            record.gaps = record.gaps * AGENT_KEEP + (at - record.last_call)
            record.intervals = record.intervals * AGENT_KEEP + 1.0
        record.last_call = max(record.last_call, at)

    def left_by_history(self, owner: str, *, now: float) -> float | None:
        """Time left until ``owner``'s next call judged by its own calls alone, for an agent
        without a prediction: its usual interval, or how long it has been away if longer
        (LRU's guess); None before it has an interval."""
        record = self._agents.get(owner)
        if record is None or record.intervals == 0:
            return None
        return max(record.gaps / record.intervals, now - record.last_call)

    def usual_left(self, owner: str, *, now: float) -> float:
        """:meth:`left_by_history`, or how long ``owner`` has been away before it has an
        interval (0 for an agent never seen)."""
        left = self.left_by_history(owner, now=now)
        return max(0.0, now - self.last_call(owner)) if left is None else left

    def trusts_no_call(self, owner: str) -> bool:
        """Whether ``owner``'s "no call expected" still ranks it below every agent: until one
        of its no-call predictions proved wrong."""
        record = self._agents.get(owner)
        return record is None or not record.broke_no_call

    def blend(
        self, owner: str, namespace: str, *, predicted: tuple[float, float], now: float
    ) -> float:
        """The next-call time to rank ``owner`` by at ``now``, given the prediction in force as
        (predicted time, when it was made); raises KeyError for an agent never seen."""
        record, space = self._agents[owner], self._namespaces[namespace]
        fit = _pooled(record.fit, space.fit)
        age = max(0.0, now - record.last_call)
        left = _trusted_left(_paced(predicted, fit.pace), now, age, fit.typical_miss)
        return now + fit.weight * left + (1.0 - fit.weight) * age

    def knows(self, owner: str) -> bool:
        return owner in self._agents

    def agents(self) -> Iterable[str]:
        """Every agent with a record, in no particular order."""
        return self._agents.keys()

    def last_call(self, owner: str) -> float:
        """When ``owner`` last called (or was first predicted); 0 for an agent never seen."""
        record = self._agents.get(owner)
        return 0.0 if record is None else record.last_call

    def weight(self, owner: str, namespace: str) -> float:
        """How much ``owner``'s predictions count now (1: fully, 0: recency only)."""
        record = self._agents.get(owner)
        space = self._namespaces.get(namespace, NamespaceRecord())
        return _pooled(record.fit if record else Fit(), space.fit).weight

    def pace(self, owner: str, namespace: str) -> float:
        """How much longer than predicted ``owner``'s calls take to come (1: on time)."""
        record = self._agents.get(owner)
        space = self._namespaces.get(namespace, NamespaceRecord())
        return _pooled(record.fit if record else Fit(), space.fit).pace

    def forget(self, owners: Iterable[str]) -> None:
        for owner in owners:
            self._agents.pop(owner, None)

    def drop_namespace(self, namespace: str, *, prefix: str) -> None:
        """Forget a finished simulation: its pooled record and its agents (owner keys starting
        with ``prefix``)."""
        self._namespaces.pop(namespace, None)
        self.forget([owner for owner in self._agents if owner.startswith(prefix)])

    def _add(self, owner: str, namespace: str, at: float) -> None:
        space = self._namespaces.get(namespace)
        if space is None:
            space = self._namespaces[namespace] = NamespaceRecord()
        self._agents[owner] = AgentRecord(at)
        space.members.append(owner)

    def _rivals_scored(
        self,
        owner: str,
        record: AgentRecord,
        space: NamespaceRecord,
        at: float,
        predicted: float,
        prediction_of: PredictionOf,
    ) -> tuple[int, float, float]:
        """(pairs, right by prediction, right by recency) against up to RIVALS agents that did
        not call at ``at``, taken in rotation (forgotten members are dropped on the way);
        ``predicted`` is the caller's prediction at its learned pace."""
        age = at - record.last_call
        left = _trusted_left(predicted, at, age, _pooled(record.fit, space.fit).typical_miss)
        pairs, hint_right, recency_right = 0, 0.0, 0.0
        for _ in range(min(2 * RIVALS, len(space.members))):
            if pairs == RIVALS or not space.members:
                break
            space.cursor %= len(space.members)
            rival = space.members[space.cursor]
            rival_record = self._agents.get(rival)
            if rival_record is None:
                space.members.pop(space.cursor)
                continue
            space.cursor += 1
            rival_predicted = prediction_of(rival)
            if rival == owner or rival_record.last_call >= at or rival_predicted is None:
                continue
            pairs += 1
            rival_age = at - rival_record.last_call
            rival_fit = _pooled(rival_record.fit, space.fit)
            rival_left = _trusted_left(
                _paced(rival_predicted, rival_fit.pace), at, rival_age, rival_fit.typical_miss
            )
            hint_right += _right(left, rival_left)
            recency_right += _right(age, rival_age)
        return pairs, hint_right, recency_right


def _trusted_left(predicted: float, now: float, age: float, typical_miss: float) -> float:
    """Time left until the call as ranks take it at full trust: the prediction's, or for an
    overdue one a share of the agent's age that grows as the call stays away (``typical_miss``:
    how far off predictions usually land)."""
    if predicted >= now:
        return predicted - now
    overdue = now - predicted
    kept = typical_miss / (typical_miss + overdue) if typical_miss > 0 else 0.0
    return (1.0 - kept) * age


def _right(caller: float, rival: float) -> float:
    """1 if the caller's smaller value ranks it nearer than the rival, 0.5 on a tie, else 0."""
    return 1.0 if caller < rival else 0.5 if caller == rival else 0.0


class Pooled(NamedTuple):
    """An agent's fit shrunk toward its namespace's."""

    weight: float  # in [0, 1]: how much its predictions count against recency
    typical_miss: float  # how far off its predictions (at its pace) usually land
    pace: float  # actual over predicted distance, within PACE_BOUNDS


def _paced(predicted: tuple[float, float], pace: float) -> float:
    """The predicted time of ``predicted`` = (time, made at) with its distance times ``pace``."""
    at, made = predicted
    return made + pace * (at - made)


def _pooled(agent: Fit, space: Fit) -> Pooled:
    prior = PRIOR_CALLS / space.calls if space.calls else 0.0
    calls = agent.calls + prior * space.calls
    pairs = agent.pairs + prior * space.pairs
    miss = (agent.miss + prior * space.miss) / calls if calls else 0.0
    ahead = agent.ahead + prior * space.ahead
    took = agent.took + prior * space.took
    pace = min(PACE_BOUNDS[1], max(PACE_BOUNDS[0], took / ahead)) if ahead > 0 else 1.0
    if pairs == 0:
        return Pooled(1.0, miss, pace)
    lead = (
        agent.hint_right
        + prior * space.hint_right
        - agent.recency_right
        - prior * space.recency_right
    ) / pairs
    return Pooled(min(1.0, max(0.0, 0.5 + lead / (2 * MARGIN))), miss, pace)
