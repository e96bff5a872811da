"""The ScaleSim runtime: everything that decides, driven by the live server and the replay alike.

Who calls it: in the server, SGLang's ``scalesim`` eviction strategy owns one runtime per
scheduler process and the hooks reach it through the cache (``tree_core.eviction_strategy``);
they feed it request metadata, control updates, inserts, splits and removals, and ask it for
eviction ranks and prefetch plans. The trace replay drives the same object with the trace's
hints and its own tree. Pure Python: the distance core and the planner, no torch or sglang.

Invariants:
- Time is per namespace (one simulation's clock, in its own unit) and only moves forward; it
  comes from the inputs (updates, request metadata), never from a wall clock, so every
  tensor-parallel rank fed the same stream makes the same decisions.
- Ranks are relative: an owner ranks by ``next_call - clock`` of its own namespace, so owners of
  different simulations compare by how soon they call, and keys built at one instant compare.
- An update is checked whole (versions, clock) before any of it is applied.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scalesim.distance import (
    KNOWN,
    NO_CALL,
    NO_CALL_RANK,
    NOBODY_RANK,
    UNKNOWN_RANK,
    DistanceTable,
    Knowledge,
    OwnerRank,
    RankKey,
)
from scalesim.distance.table import DistanceLookup, Source
from scalesim.memory.plan import PrefetchPlan
from scalesim.memory.planner import MemoryPlanner
from scalesim.memory.resource import Resource

from .config import HintTrustMode, PrefixOwnership, RuntimeConfig
from .contract import AgentMeta, ContractError, DistanceUpdate, owner_key, split_owner
from .owners import NodeOwners, TreeNode, depth_of, stable_node
from .reuse import PathReuse
from .trust import HintTrust


@dataclass
class Namespace:
    """One simulation's clock and the version of its last accepted update (None before any)."""

    clock: float = 0.0
    version: int | None = None
    due: list[tuple[float, str]] = field(default_factory=list)  # (eta, owner) heap, lazy
    due_live: int = 0  # heap size after its last compaction


@dataclass
class RuntimeCounters:
    """What the runtime did since it started (api.md section 4 names, without the prefix)."""

    distance_updates: int = 0  # agent entries applied, from updates and request metadata
    rejected_updates: int = 0
    kv_prefetch_tokens: int = 0
    kv_prefetch_failures: int = 0
    evicted_device_tokens: int = 0  # counted by the adapter from the tree's eviction results
    evicted_host_tokens: int = 0


@dataclass(frozen=True)
class UpdateResult:
    """The answer to an accepted distance update."""

    namespace: str
    applied: int
    version: int | None
    clock: float


@dataclass(frozen=True)
class DropResult:
    """What forgetting a namespace dropped."""

    namespace: str
    agents: int
    owners: int


@dataclass(frozen=True)
class NamespaceState:
    """A read-only view of one namespace."""

    name: str
    clock: float
    version: int | None
    agents: int


class ScaleSimRuntime:
    """Distances, ownership and the decisions built on them, for one scheduler process."""

    def __init__(self, config: RuntimeConfig | None = None) -> None:
        self.config = config if config is not None else RuntimeConfig()
        self.table = DistanceTable(
            horizon=self.config.horizon, overdue_grace=self.config.overdue_grace
        )
        self.owners = NodeOwners()
        self.trust = HintTrust()
        self.reuse = PathReuse(self.config.reuse_chunk_tokens)
        self.counters = RuntimeCounters()
        self._namespaces: dict[str, Namespace] = {}
        self._planner = MemoryPlanner(self)

    # ---- inputs -------------------------------------------------------------------------
    def advance(self, namespace: str, clock: float) -> None:
        """Move ``namespace``'s clock to ``clock`` (never backwards)."""
        state = self._namespace(namespace)
        state.clock = max(state.clock, clock)

    def clock_of(self, namespace: str) -> float | None:
        """``namespace``'s clock (the latest time it reported), None if it is unknown."""
        state = self._namespaces.get(namespace)
        return None if state is None else state.clock

    def observe(self, meta: AgentMeta) -> str:
        """A request arrived with ``meta``: advance its clock, score the prediction that was in
        force for its agent (:class:`HintTrust`), apply its ``next_call`` (a null ``next_call``
        means no call expected: the agent ranks as far).

        The prediction is scored against the request's own clock, not the namespace's: out of
        order, a call may trail the clock other agents already moved (AI Metropolis' window),
        and it still came at the time it names.

        Returns the request's owner key.
        """
        if meta.clock is not None:
            self.advance(meta.namespace, meta.clock)
        state = self._namespace(meta.namespace)
        found = self.table.lookup(meta.owner, now=state.clock)
        entry = found.entry
        self.trust.called(
            meta.owner,
            meta.namespace,
            at=state.clock if meta.clock is None else meta.clock,
            predicted=None if entry is None or entry.eta is None else (entry.eta, entry.set_at),
            prediction_of=lambda owner: _prediction(self.table.lookup(owner, now=state.clock)),
            despite_no_call=found.knowledge is Knowledge.NO_CALL,
        )
        if meta.next_call is not None or meta.no_call:
            self.predict(meta.namespace, {meta.agent: meta.next_call}, source=Source.HINT)
        self._forget_idle()
        return meta.owner

    def predict(
        self,
        namespace: str,
        next_calls: dict[str, float | None],
        *,
        source: Source = Source.HINT,
    ) -> int:
        """Set agents' absolute next-call times at the namespace's clock; returns how many."""
        state = self._namespace(namespace)
        distances = {
            owner_key(namespace, agent): None if at is None else max(0.0, at - state.clock)
            for agent, at in next_calls.items()
        }
        applied = self.table.update_batch(distances, now=state.clock, source=source)
        for owner, distance in distances.items():
            self.trust.seen(owner, namespace, at=state.clock)
            if distance is not None:
                heapq.heappush(state.due, (state.clock + distance, owner))
        self._compact_due(state)
        self.counters.distance_updates += applied
        self._forget_idle()
        return applied

    def apply(self, update: DistanceUpdate) -> UpdateResult:
        """Apply a checked control update, all or nothing.

        Raises:
            ContractError: (409) a version not newer than the namespace's, or a clock that
                moves backwards; nothing is applied.
        """
        state = self._namespaces.get(update.namespace, Namespace())
        last_version = -1 if state.version is None else state.version
        if update.version is not None and update.version <= last_version:
            self.counters.rejected_updates += 1
            raise ContractError(
                f"version {update.version} is not newer than {state.version}", status=409
            )
        if update.clock < state.clock:
            self.counters.rejected_updates += 1
            raise ContractError(
                f"clock {update.clock} is older than the namespace's {state.clock}", status=409
            )
        self.advance(update.namespace, update.clock)
        applied = self.predict(update.namespace, dict(update.next_call), source=Source.TABLE)
        withdrawn = [owner_key(update.namespace, agent) for agent in update.unknown]
        forgotten = self.table.forget(withdrawn, now=update.clock)
        self.trust.forget(withdrawn)  # withdrawn: ranked by recency alone, as stock would
        self.counters.distance_updates += forgotten
        applied += forgotten
        state = self._namespaces[update.namespace]
        if update.version is not None:
            state.version = update.version
        return UpdateResult(update.namespace, applied, state.version, state.clock)

    def drop_namespace(self, namespace: str) -> DropResult | None:
        """Forget a finished simulation: its agents rank as unknown. None if it is unknown."""
        state = self._namespaces.pop(namespace, None)
        if state is None:
            return None
        prefix = owner_key(namespace, "")
        agents = [agent for agent in self.table.agents() if agent.startswith(prefix)]
        dropped = self.table.forget(agents, now=state.clock)
        owners = self.owners.drop(self.owners.owners_with_prefix(prefix))
        self.trust.drop_namespace(namespace, prefix=prefix)
        self.reuse.forget([owner for owner in self.reuse.agents() if owner.startswith(prefix)])
        return DropResult(namespace, dropped, owners)

    def record_path(
        self,
        end: TreeNode | None,
        owner: str,
        *,
        tokens: Sequence[int],
        request: str | None = None,
    ) -> int:
        """``owner``'s request ``request`` inserted the path ``tokens`` ending at ``end``; the
        owner owns the part its next call is expected to repeat, learned from how its past
        calls repeated their predecessors (:class:`PathReuse`; ``prefix_ownership: whole``
        owns every token).

        Returns the length owned; 0 drops the owner's path (its next call reuses nothing).
        """
        owned = self.reuse.record(owner, tokens, request=request)
        if self.config.prefix_ownership is PrefixOwnership.WHOLE:
            owned = len(tokens)
        if end is None:
            return owned
        node = stable_node(end, end_tokens=len(tokens), stable_tokens=owned)
        if node is None:
            self.owners.drop([owner])
        else:
            self.owners.record_path(node, owner)
        return owned

    # ---- decisions ----------------------------------------------------------------------
    def rank_key(
        self,
        owners: Iterable[str],
        last_use: float,
        *,
        now: float = 0.0,
        tiebreak: str = "",
        depth: int | None = None,
    ) -> RankKey:
        """Eviction rank of state owned by ``owners`` (lower: evict sooner); state with no
        owner ranks lowest (``NOBODY``), then state whose owners all expect no call.

        ``now`` is time elapsed past every namespace's clock (0: the present); the nearest
        owner decides, by its distance from its own namespace's clock. ``depth`` (tokens from
        the root to the state's end) stretches each owner's time left by the odds that its next
        call repeats its path that deep (:meth:`PathReuse.odds`): keeping state is worth its
        odds of reuse over the time it holds memory, so an agent's memory that its calls now
        and then rewrite ranks farther than its persona, and farther than the memory of an
        agent calling a little later that never rewrites it.
        """
        best = max((self._owner_rank(owner, now, depth) for owner in owners), default=NOBODY_RANK)
        return RankKey(best.known, best.neg_eta, last_use, tiebreak)

    def node_rank(self, node: TreeNode, last_use: float) -> RankKey:
        """The eviction rank of a radix node (tie-broken by its id)."""
        owners = self.owners.of(node)
        depth = depth_of(node) if owners else None  # nobody's state ranks lowest at any depth
        return self.rank_key(owners, last_use, tiebreak=f"{node.id:012d}", depth=depth)

    def due_owners(self) -> list[str]:
        """Owners expected within the prefetch window, nearest first (ties by key).

        Only calls still ahead count: a predicted call already past its time (overdue) is not
        prefetched for, since it did not come when expected; it leaves the due list for good
        unless a new prediction is made. Nor is one whose agent's predictions earned too little
        trust to rank it within the window (:meth:`is_near`).
        """
        window = self.config.prefetch_window
        found: list[tuple[float, str]] = []
        for state in self._namespaces.values():
            kept: list[tuple[float, str]] = []
            while state.due and state.due[0][0] <= state.clock + window:
                eta, owner = heapq.heappop(state.due)
                if eta < state.clock:
                    continue
                lookup = self.table.lookup(owner, now=state.clock)
                if lookup.knowledge is Knowledge.KNOWN and lookup.eta == eta:
                    kept.append((eta, owner))
                    if self.is_near([owner]):
                        found.append((eta - state.clock, owner))
            for item in kept:
                heapq.heappush(state.due, item)
        return [owner for _, owner in sorted(set(found))]

    def plan_prefetch(
        self, resources: Sequence[Resource], *, free_bytes: int, budget_bytes: int
    ) -> PrefetchPlan:
        """Host resources to load back (nearest first) within ``budget_bytes``, making room only
        by evicting device resources whose nearest owner calls strictly later."""
        return self._planner.prefetch_plan(
            resources,
            now=0.0,
            window=self.config.prefetch_window,
            budget_bytes=budget_bytes,
            device_free_bytes=free_bytes,
        )

    def is_near(self, owners: Iterable[str]) -> bool | None:
        """True if the nearest owner calls within the prefetch window, False if later, None if
        no owner has a known distance."""
        rank = self.rank_key(owners, 0.0)
        remaining = rank.remaining(0.0)
        return None if remaining is None else remaining <= self.config.prefetch_window

    # ---- views --------------------------------------------------------------------------
    def namespaces(self) -> list[NamespaceState]:
        """Every namespace, by name."""
        counts: dict[str, int] = {}
        for owner in self.table.agents():
            namespace, _ = split_owner(owner)
            counts[namespace] = counts.get(namespace, 0) + 1
        return [
            NamespaceState(name, state.clock, state.version, counts.get(name, 0))
            for name, state in sorted(self._namespaces.items())
        ]

    def _namespace(self, name: str) -> Namespace:
        state = self._namespaces.get(name)
        if state is None:
            state = self._namespaces[name] = Namespace()
        return state

    def _owner_rank(self, owner: str, now: float, depth: int | None) -> OwnerRank:
        """``owner``'s rank for state ``depth`` tokens deep (None: its whole path), its time left
        over the odds that its next call repeats that deep."""
        rank = self._call_rank(owner, now)
        if depth is None or rank.neg_eta >= 0.0:  # nothing left to stretch: due, unknown, nobody
            return rank
        if self.config.prefix_ownership is PrefixOwnership.WHOLE:
            return rank
        return OwnerRank(rank.known, rank.neg_eta / self.reuse.odds(owner, depth))

    def _call_rank(self, owner: str, now: float) -> OwnerRank:
        """How near ``owner``'s next call is, ``now`` past its namespace's clock, as minus the
        time left: its prediction blended with its recency by the trust it earned."""
        namespace = split_owner(owner)[0]
        state = self._namespaces.get(namespace)
        clock = (0.0 if state is None else state.clock) + now
        found = self.table.lookup(owner, now=clock)
        learned = self.config.hint_trust is HintTrustMode.LEARNED
        if found.knowledge is Knowledge.NO_CALL:
            if not learned:
                return NO_CALL_RANK
            if not self.trust.trusts_no_call(owner):
                return self._rank_by_history(owner, clock)  # its "no call" was wrong before
            return OwnerRank(NO_CALL, -self.trust.usual_left(owner, now=clock))
        prediction = _prediction(found)
        if prediction is None:  # no fresh prediction: withdrawn, stale or none
            return self._rank_by_history(owner, clock) if learned else UNKNOWN_RANK
        eta = prediction[0]
        if learned and self.trust.knows(owner):
            eta = self.trust.blend(owner, namespace, predicted=prediction, now=clock)
        return OwnerRank(KNOWN, clock - eta)

    def _rank_by_history(self, owner: str, clock: float) -> OwnerRank:
        """An agent without a prediction: by its own calls' intervals, else by recency alone."""
        left = self.trust.left_by_history(owner, now=clock)
        return UNKNOWN_RANK if left is None else OwnerRank(KNOWN, -left)

    def _compact_due(self, state: Namespace) -> None:
        """Drop superseded heap entries once they outnumber the live ones (amortised O(1))."""
        if len(state.due) > 2 * state.due_live + 64:
            self._rebuild_due(state)

    def _rebuild_due(self, state: Namespace) -> None:
        live = set()
        for _, owner in state.due:
            entry = self.table.lookup(owner, now=state.clock).entry
            if entry is not None and entry.eta is not None and entry.eta >= state.clock:
                live.add((entry.eta, owner))
        state.due = sorted(live)
        state.due_live = len(state.due)

    def _forget_idle(self) -> None:
        """Keep agents without a path in the tree within ``max_idle_agents``: past the cap,
        forget stale entries, then the longest-idle agents, down to 90% of it (so the scan
        runs once per many arrivals)."""
        cap = self.config.max_idle_agents
        known = max(len(self.table), len(self.trust), len(self.reuse))
        if known - self.owners.n_owners <= cap:
            return
        heard = set(self.table.agents()) | set(self.trust.agents()) | set(self.reuse.agents())
        idle = [
            (self._last_seen(owner), owner) for owner in heard if self.owners.end_of(owner) is None
        ]
        excess = len(idle) - int(cap * 0.9)
        if excess <= 0:
            return
        dropped = [owner for _, owner in sorted(idle)[:excess]]
        self.table.forget(dropped, now=0.0)
        self.trust.forget(dropped)
        self.reuse.forget(dropped)
        for state in self._namespaces.values():  # idle namespaces too: nothing else compacts them
            self._rebuild_due(state)

    def _last_seen(self, owner: str) -> tuple[bool, float]:
        """Sort key of an idle agent: stale entries first, then by when it was last heard of."""
        state = self._namespaces.get(split_owner(owner)[0])
        clock = 0.0 if state is None else state.clock
        found = self.table.lookup(owner, now=clock)
        fresh = found.knowledge is not Knowledge.STALE
        heard = max(found.entry.set_at if found.entry else 0.0, self.trust.last_call(owner))
        return fresh, heard - clock


def _prediction(found: DistanceLookup) -> tuple[float, float] | None:
    """A fresh prediction as (predicted time, when it was made); None without one."""
    if found.eta is None or found.entry is None:
        return None
    return found.eta, found.entry.set_at
