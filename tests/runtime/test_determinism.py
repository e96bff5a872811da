"""Determinism across tensor-parallel ranks: the same input stream, the same decisions.

Every TP rank's scheduler holds its own runtime and its own radix tree, fed the same requests,
control updates and tree events in the same order (api.md section 2). Ranks are separate
processes, and Python salts ``str`` hashes per process, so any decision that leaked the
iteration order of a set or dict of owner keys would differ between ranks. Here two worker
processes (this file run as a script, with different ``PYTHONHASHSEED``) each hold one runtime
and one prefix tree (``runtime_tree.py``, the stand-in for SGLang's, whose own determinism
across ranks SGLang checks itself) and run a hypothesis-generated stream of request metadata,
control updates, inserts, splits, removals and evictions; after every step each reports its
eviction order over the tree's leaves, ``due_owners()``, a prefetch plan, and the adapter-slot
decisions (the victim among all adapters, the adapter prefetch plan), and the test compares the
two reports step by step. Standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_tree import Node, Tree

from scalesim.memory.plan import PrefetchPlan
from scalesim.memory.resource import Resource, Tier
from scalesim.runtime import (
    AgentMeta,
    ContractError,
    DistanceUpdate,
    ScaleSimRuntime,
)
from scalesim.runtime.adapters import AdapterSlots, SlotView

HERE = Path(__file__).resolve().parent
#: Two ranks, two hash salts.
HASH_SEEDS = ("1", "2")
NAMESPACES = ("n0", "n1")
AGENTS = tuple(f"a{index}" for index in range(4))
#: Prefetch limits of every step's plan, in tokens (planner bytes = tokens here).
FREE_TOKENS, BUDGET_TOKENS = 6, 12

Op = list[Any]  # JSON-friendly: [kind, *arguments]

#: next_call - clock: often within the prefetch window (2), so several owners are due at once.
_next_call = st.one_of(st.none(), st.integers(0, 2), st.integers(0, 12))
_advance = st.sampled_from((0, 0, 1, 2, 3))
_requests = st.tuples(
    st.just("request"),
    st.integers(0, len(NAMESPACES) - 1),
    st.integers(0, len(AGENTS) - 1),
    _advance,
    _next_call,
    st.integers(0, 1),  # memory variant: a rewrite diverges from the old path
    st.integers(1, 2),  # observations
)
_updates = st.tuples(
    st.just("update"),
    st.integers(0, len(NAMESPACES) - 1),
    st.one_of(_advance, st.just(-1)),  # clock advance (negative: a stale clock, 409)
    st.one_of(st.none(), st.integers(-1, 2)),  # version step (<= 0: stale, 409)
    st.dictionaries(st.integers(0, len(AGENTS) - 1), _next_call, max_size=4),
    st.lists(st.integers(0, len(AGENTS) - 1), max_size=2, unique=True),
)
_OPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "request": _requests,
    "update": _updates,
    "touch": st.tuples(st.just("touch"), st.integers(0, 50), st.integers(1, 6)),
    "evict": st.tuples(st.just("evict"), st.integers(1, 3)),
    "remove": st.tuples(st.just("remove"), st.integers(0, 50)),
    "drop": st.tuples(st.just("drop"), st.integers(0, len(NAMESPACES) - 1)),
}
#: Requests weigh most: they build the tree and the distances the other ops work on.
_KINDS = ("request",) * 4 + ("update",) * 2 + ("touch", "evict", "remove", "drop")
_ops = st.sampled_from(_KINDS).flatmap(lambda kind: _OPS[kind])
streams = st.lists(_ops.map(list), min_size=8, max_size=40)


# ---- one rank (run inside a worker process) -------------------------------------------------
class Decisions(NamedTuple):
    """What one step did and what the rank would decide next."""

    outcome: object  # the op's own result (an evicted order, a 409, an update's reply)
    eviction_order: list[str]  # every leaf, lowest rank (first to go) first
    ranks: list[tuple[str, int, float, float]]  # each leaf's rank but its id tiebreak, by label
    due: list[str]  # due_owners()
    prefetch: PrefetchPlan
    adapter_victim: str | None  # the slot to free among every adapter in use
    adapter_prefetch: list[str]  # adapters to load ahead, with one free slot


class Rank:
    """One scheduler's runtime and tree, driven op by op; reports decisions by path labels
    (node ids are per process, so reports never show them)."""

    def __init__(self) -> None:
        self.runtime = ScaleSimRuntime()
        self.tree = Tree(self.runtime)
        self.adapters = AdapterSlots(self.runtime)
        self.clocks = dict.fromkeys(NAMESPACES, 0.0)
        self.versions = dict.fromkeys(NAMESPACES, 0)
        self.prompts: list[tuple[int, ...]] = []
        self.last_use: dict[int, int] = {}  # node id -> logical access time
        self.accesses = 0

    def run(self, stream: list[Op]) -> list[Decisions]:
        return [self.step(op) for op in stream]

    def step(self, op: Op) -> Decisions:
        outcome = getattr(self, f"_{op[0]}")(*op[1:])
        due = self.runtime.due_owners()
        ranks = [(label(leaf), *self._rank(leaf)[:3]) for leaf in self._leaves()]
        order = self.eviction_order()
        adapters = sorted({f"ad{agent % 3}" for agent in range(len(AGENTS))})
        resident = frozenset([None, *adapters[:2]])
        view = SlotView(resident, frozenset([adapters[0]]), free_slots=1)
        victim = self.adapters.victim(resident)
        loads = self.adapters.prefetch_plan(due, view, max_loads=2)
        return Decisions(outcome, order, sorted(ranks), due, self.prefetch_plan(), victim, loads)

    # ---- inputs ---------------------------------------------------------------------------
    def _request(
        self, ns: int, agent: int, advance: int, ahead: int | None, variant: int, length: int
    ) -> str:
        namespace = NAMESPACES[ns]
        clock = self.clocks[namespace] = self.clocks[namespace] + advance
        meta = AgentMeta(AGENTS[agent], namespace, clock, None if ahead is None else clock + ahead)
        owner = self.runtime.observe(meta)
        self.adapters.assign(owner, f"ad{agent % 3}")
        self.adapters.touch(f"ad{agent % 3}")
        persona = (10 * ns + 1, 10 * ns + 2)
        memory = 100 + 10 * (agent % 2) + variant  # agents of a group may send the same prompt
        tokens = (*persona, memory, *range(200, 200 + length))
        end = self.tree.insert(tokens)
        self._touch_path(end)
        self.runtime.owners.record_path(end, owner)
        self.prompts.append(tokens)
        return owner

    def _update(
        self,
        ns: int,
        advance: int,
        version_step: int | None,
        next_call: dict[str, int | None],
        unknown: list[int],
    ) -> str:
        namespace = NAMESPACES[ns]
        clock = self.clocks[namespace] + advance
        version = None if version_step is None else self.versions[namespace] + version_step
        agents = {int(agent): ahead for agent, ahead in next_call.items()}
        calls = {AGENTS[a]: None if d is None else clock + d for a, d in sorted(agents.items())}
        withdrawn = tuple(AGENTS[agent] for agent in unknown if agent not in agents)
        update = DistanceUpdate(namespace, clock, version, calls, withdrawn)
        try:
            result = self.runtime.apply(update)
        except ContractError as error:
            return f"{error.status}: {error}"
        self.clocks[namespace] = result.clock
        if result.version is not None:
            self.versions[namespace] = result.version
        return repr(result)

    def _touch(self, index: int, cut: int) -> str:
        """A match ending inside a node: SGLang splits it (the stand-in does on insert)."""
        if not self.prompts:
            return "no prompt"
        prompt = self.prompts[index % len(self.prompts)]
        prefix = prompt[: min(cut, len(prompt))]
        if not self._cached(prefix):
            return "not cached"
        self._touch_path(self.tree.insert(prefix))
        return f"touched {prefix}"

    def _evict(self, n_nodes: int) -> list[str]:
        """Evict ``n_nodes`` leaves one at a time, lowest rank first, as SGLang's heap does."""
        evicted = []
        for _ in range(n_nodes):
            leaves = self._leaves()
            if not leaves:
                break
            victim = min(leaves, key=self._rank)
            evicted.append(label(victim))
            self.tree.remove(victim)
        return evicted

    def _remove(self, index: int) -> str:
        """A leaf leaves the tree for another reason (SGLang's host eviction, say)."""
        leaves = sorted(self._leaves(), key=label)
        if not leaves:
            return "no leaf"
        victim = leaves[index % len(leaves)]
        self.tree.remove(victim)
        return label(victim)

    def _drop(self, ns: int) -> str:
        return repr(self.runtime.drop_namespace(NAMESPACES[ns]))

    # ---- decisions --------------------------------------------------------------------------
    def eviction_order(self) -> list[str]:
        """Every leaf, in the order the policy would evict them."""
        return [label(leaf) for leaf in sorted(self._leaves(), key=self._rank)]

    def prefetch_plan(self) -> PrefetchPlan:
        """Owners' paths as host records, leaves as device records, owners in set order (as
        the live prefetcher builds them)."""
        owners = self.runtime.owners
        host = [
            Resource(owner, (owner,), _path_tokens(end), Tier.HOST, self._used(end))
            for owner in owners.owners_with_prefix("")
            if (end := owners.end_of(owner)) is not None
        ]
        device = [
            Resource(
                label(leaf), tuple(owners.of(leaf)), len(leaf.key), Tier.DEVICE, self._used(leaf)
            )
            for leaf in self._leaves()
        ]
        return self.runtime.plan_prefetch(
            host + device, free_bytes=FREE_TOKENS, budget_bytes=BUDGET_TOKENS
        )

    def _rank(self, node: Node) -> Any:
        return self.runtime.node_rank(node, self._used(node))

    def _used(self, node: Node) -> float:
        return float(self.last_use[node.id])

    def _leaves(self) -> list[Node]:
        return [node for node in self.tree.nodes() if not node.children]

    def _touch_path(self, node: Node | None) -> None:
        self.accesses += 1
        while node is not None and node.parent is not None:
            self.last_use[node.id] = self.accesses
            node = node.parent

    def _cached(self, tokens: tuple[int, ...]) -> bool:
        node, rest = self.tree.root, tokens
        while rest:
            child = node.children.get(rest[0])
            size = min(len(rest), 0 if child is None else len(child.key))
            if child is None or child.key[:size] != rest[:size]:
                return False
            node, rest = child, rest[size:]
        return True


def label(node: Node | None) -> str:
    """A node's full path (tokens from the root): the same on every rank."""
    tokens: list[int] = []
    while node is not None and node.parent is not None:
        tokens[:0] = node.key
        node = node.parent
    return "path:" + ",".join(map(str, tokens))


def _path_tokens(node: Node | None) -> int:
    size = 0
    while node is not None and node.parent is not None:
        size += len(node.key)
        node = node.parent
    return size


def worker() -> None:
    """Run each stream (one JSON line on stdin) on a fresh rank; answer its report per line."""
    for line in sys.stdin:
        print(json.dumps([repr(step) for step in Rank().run(json.loads(line))]), flush=True)


# ---- the test ---------------------------------------------------------------------------------
class Worker:
    """One rank's process, with its own hash salt."""

    def __init__(self, hash_seed: str) -> None:
        path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            env={**os.environ, "PYTHONPATH": path, "PYTHONHASHSEED": hash_seed},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, stream: list[Op]) -> list[str]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(stream) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        assert line, f"rank worker exited with {self._process.wait()}"
        reports: list[str] = json.loads(line)
        return reports

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        self._process.wait(timeout=30)


@pytest.fixture(scope="module")
def ranks() -> Iterator[tuple[Worker, ...]]:
    workers = tuple(Worker(seed) for seed in HASH_SEEDS)
    yield workers
    for worker_process in workers:
        worker_process.stop()


@settings(deadline=None, max_examples=200)
@given(stream=streams)
def test_ranks_fed_the_same_stream_decide_alike_at_every_step(
    ranks: tuple[Worker, ...], stream: list[Op]
) -> None:
    first, second = (rank.run(stream) for rank in ranks)
    for index, (mine, theirs) in enumerate(zip(first, second, strict=True)):
        assert mine == theirs, f"ranks diverged at step {index}: {stream[index]}"


def test_decisions_compared_are_not_vacuous() -> None:
    """A stream with a split, an eviction and two due agents yields an order, both due owners
    and a plan that fetches; reports name nodes by path, never by per-process id."""
    stream: list[Op] = [
        ["request", 0, 0, 0, 1, 0, 2],  # n0|a0 at clock 0, next call at 1
        ["request", 0, 1, 0, 9, 0, 1],  # n0|a1, next call at 9
        ["touch", 0, 1],  # splits the persona [1, 2] after its first token
        ["evict", 1],
        ["update", 0, 0, 1, {"1": 1}, []],  # a1 now calls at 1 as well
    ]
    steps = Rank().run(stream)
    assert steps[2].outcome == "touched (1,)"
    assert steps[2].eviction_order == ["path:1,2,110,200", "path:1,2,100,200,201"]  # a1 later
    assert steps[3].outcome == ["path:1,2,110,200"]
    last = steps[-1]
    assert last.eviction_order == ["path:1,2,100,200,201"]  # a1 now ends inside a0's path
    assert last.due == ["n0|a0", "n0|a1"]
    assert last.prefetch.fetch  # the plan is exercised: something fits the budget
    assert last.adapter_victim == "ad0"  # both agents due at 1: ad0 was used longer ago


if __name__ == "__main__":
    worker()
