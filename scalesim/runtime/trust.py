"""How far to trust each agent's predicted next calls, learned from how they turned out.

Who calls it: the runtime. Every call an agent makes scores the prediction that was in force
for it against what LRU would have assumed at the moment it was made (the call is as far away
as the agent's last call is old). Ranks then use the time left until the call as
``weight * (prediction - now) + (1 - weight) * (now - last call)``: ``weight`` is the share of
the squared error the prediction avoided compared with LRU's (inverse-error weighting), pooled
from the agent toward its namespace. Exact predictions earn 1 (rank by distance alone);
predictions no better than recency fall toward 0, where the order is exactly LRU's (the agent
used longest ago goes first). A wrong estimate thus costs little and a right one keeps its value.

Early and late predictions differ: a call that came before its predicted time only adds to the
error; a predicted time that passed without the call counts as "now", trusted less the longer
it is overdue compared with how far off this scope's predictions usually land, so a call that
was expected and never came stops pinning its agent.

Invariants: pure arithmetic on the inputs (namespace clocks, never a wall clock), so every
tensor-parallel rank learns the same weights; memory is one small record per agent with a
prediction or a call, dropped with the agent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

#: Decay of an agent's own record per scored call (about the last five calls count).
AGENT_KEEP = 0.8
#: Decay of a namespace's pooled record per scored call.
NAMESPACE_KEEP = 0.995
#: How many of its namespace's average observations an agent's record starts from.
PRIOR_CALLS = 4.0


@dataclass
class Fit:
    """Decayed sums over scored calls."""

    calls: float = 0.0
    hint_sq: float = 0.0  # sum of (actual - predicted)^2
    recency_sq: float = 0.0  # sum of (actual - LRU's guess)^2
    miss: float = 0.0  # sum of |actual - predicted|

    def add(self, hint_error: float, recency_error: float, *, keep: float) -> None:
        self.calls = self.calls * keep + 1.0
        self.hint_sq = self.hint_sq * keep + hint_error * hint_error
        self.recency_sq = self.recency_sq * keep + recency_error * recency_error
        self.miss = self.miss * keep + abs(hint_error)


@dataclass
class AgentRecord:
    """One agent's last call (or first sighting) and the fit of its predictions."""

    last_call: float
    fit: Fit = field(default_factory=Fit)


@dataclass
class NamespaceRecord:
    """One simulation's pooled fit."""

    fit: Fit = field(default_factory=Fit)


class HintTrust:
    """Per-agent trust in predictions, and the blended next-call time ranks are built from."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentRecord] = {}
        self._namespaces: dict[str, NamespaceRecord] = {}

    def __len__(self) -> int:
        return len(self._agents)

    def seen(self, owner: str, namespace: str, *, at: float) -> None:
        """``owner`` got a prediction at ``at``: its recency guess starts there if it never
        called."""
        if owner not in self._agents:
            self._namespace(namespace)
            self._agents[owner] = AgentRecord(at)

    def called(
        self,
        owner: str,
        namespace: str,
        *,
        at: float,
        predicted: float | None,
        predicted_at: float = 0.0,
    ) -> None:
        """``owner`` called at ``at``; ``predicted`` was the call time in force (None: none),
        set at ``predicted_at``.

        A prediction is scored only when time has passed since the agent's last call: a client
        that sends no clock teaches nothing and keeps full trust.
        """
        space = self._namespace(namespace)
        record = self._agents.get(owner)
        if record is None:
            self._agents[owner] = AgentRecord(at)
            return
        if at > record.last_call and predicted is not None:
            set_at = min(max(predicted_at, record.last_call), at)
            hint_error = at - predicted
            record.fit.add(
                hint_error, _recency_error(record.last_call, set_at, at), keep=AGENT_KEEP
            )
            space.fit.add(
                hint_error, _recency_error(record.last_call, set_at, at), keep=NAMESPACE_KEEP
            )
        record.last_call = max(record.last_call, at)

    def blend(self, owner: str, namespace: str, *, predicted: float, now: float) -> float:
        """The next-call time to rank ``owner`` by at ``now``, given the prediction in force;
        raises KeyError for an agent never seen."""
        record = self._agents[owner]
        weight, typical_miss = _pooled(record.fit, self._namespace(namespace).fit)
        if predicted < now:
            overdue = now - predicted
            weight *= typical_miss / (typical_miss + overdue) if typical_miss > 0 else 0.0
            predicted = now
        age = max(0.0, now - record.last_call)
        return now + weight * (predicted - now) + (1.0 - weight) * age

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
        return _pooled(record.fit if record else Fit(), self._namespace(namespace).fit)[0]

    def forget(self, owners: Iterable[str]) -> None:
        for owner in owners:
            self._agents.pop(owner, None)

    def drop_namespace(self, namespace: str, *, prefix: str) -> None:
        """Forget a finished simulation: its pooled record and its agents (owner keys starting
        with ``prefix``)."""
        self._namespaces.pop(namespace, None)
        self.forget([owner for owner in self._agents if owner.startswith(prefix)])

    def _namespace(self, name: str) -> NamespaceRecord:
        space = self._namespaces.get(name)
        if space is None:
            space = self._namespaces[name] = NamespaceRecord()
        return space


def _recency_error(last_call: float, set_at: float, at: float) -> float:
    """LRU's root-mean-square error on the time left until a call at ``at``, over the wait from
    ``set_at`` on, reading the time left as the time since ``last_call`` (the order LRU keeps).

    With ``A = at - last_call`` and ``u`` the age over the wait, the error is ``A - 2u``; its
    mean square over ``u`` in ``[u0, A]`` is ``(A**3 + (A - 2*u0)**3) / (6 * (A - u0))``.
    """
    whole, start = at - last_call, set_at - last_call
    if whole <= start:
        return whole
    return math.sqrt((whole**3 + (whole - 2 * start) ** 3) / (6 * (whole - start)))


def _pooled(agent: Fit, space: Fit) -> tuple[float, float]:
    """(weight in [0, 1], typical miss) of an agent's fit shrunk toward its namespace's."""
    prior = PRIOR_CALLS / space.calls if space.calls else 0.0
    calls = agent.calls + prior * space.calls
    if calls == 0:
        return 1.0, 0.0
    hint_sq = agent.hint_sq + prior * space.hint_sq
    recency_sq = agent.recency_sq + prior * space.recency_sq
    total = hint_sq + recency_sq
    weight = 1.0 if total == 0 else recency_sq / total
    return weight, (agent.miss + prior * space.miss) / calls
