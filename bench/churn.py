"""Churn: the runtime's memory while 100,000 agents pass through a real SGLang radix cache.

Each agent calls ``calls`` times, ``period`` steps apart; every call carries its metadata
(``clock``, ``next_call`` one period ahead) through ``runtime.observe``, as the scheduler hook
does. Then the agent leaves for good, and the simulation says so in one of three ways
(:class:`FinalHint`). Its prompt (its simulation's persona, its own memory, one more observation
per call) goes into SGLang's ``UnifiedRadixCache`` (Python tree core, CPU pool) built by the
replay's :class:`~scalesim.bench.replay.radix.RadixTier`, which installs ScaleSim's tree hooks:
splits and removals reach the runtime as in the live server. Agents belong to simulations
(namespaces) of ``namespace_agents`` agents each, one after another.

At checkpoints it records what the tree holds (nodes, device tokens, agents with a path in it)
beside what the runtime holds (nodes with an ownership record, owners with a path, owner
references over the tree, distance-table entries, namespaces, due-heap entries); tracemalloc
measures the bytes the runtime's files allocated while the last ``traced_agents`` agents passed
through and that are still live after the run. Variants: no staleness (the default config),
``overdue_grace`` and ``horizon`` set, and finished namespaces deleted (``DELETE``).
A benchmark: it prints and writes results, never asserts (``tests/bench/test_churn.py`` does).

Run: ``python -m scalesim.bench.churn [--agents 100000 --calls 2 --final-hint update ...]``.
Writes ``bench/results/churn-<machine>[-<hint>-hints].json`` and ``.md`` (or ``--out-dir``).
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import os
import platform
import re
import time
import tracemalloc
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from scalesim.runtime import AgentMeta, DistanceUpdate, RuntimeConfig, ScaleSimRuntime
from scalesim.sglang.eviction import ScaleSimStrategy

from .replay.radix import RadixTier

RESULTS_DIR = Path(__file__).resolve().parent / "results"
#: Where the runtime's own allocations are made (owner keys, sets, table entries, heaps).
RUNTIME_FILES = ("*/scalesim/runtime/*", "*/scalesim/distance/*")
_PERSONA_TOKENS, _MEMORY_TOKENS, _OBSERVATION_TOKENS = 16, 8, 8


class FinalHint(enum.Enum):
    """How the simulation tells the server that an agent's last call was its last."""

    UPDATE = "update"  # a control update after the call: next_call null (no call expected)
    NULL = "null"  # the last call's own metadata says next_call null
    UNKEPT = "unkept"  # the last call's next_call is one period ahead; that call never comes


@dataclasses.dataclass(frozen=True)
class ChurnParams:
    """The workload and the cache (times in steps, sizes in tokens)."""

    agents: int = 100_000
    calls: int = 2  # calls per agent; then it never returns
    final_hint: FinalHint = FinalHint.UPDATE
    arrivals: int = 25  # agents arriving per step
    period: int = 2  # steps between an agent's calls (what its next_call says)
    namespace_agents: int = 1_000  # agents per simulation
    capacity_tokens: int = 4_096
    headroom_tokens: int = 1_024  # evicted beyond need, as the scheduler evicts per batch
    due_poll_steps: int = 0  # call due_owners every this many steps (HiCache prefetch); 0 never
    traced_agents: int = 2_000  # the last agents, passed through under tracemalloc
    checkpoints: int = 10


@dataclasses.dataclass(frozen=True)
class Variant:
    """A runtime setting to measure; ``delete_finished``: DELETE a namespace once done."""

    name: str
    config: RuntimeConfig
    delete_finished: bool = False


def default_variants(period: int) -> tuple[Variant, ...]:
    """No staleness (the default), both staleness bounds, finished namespaces deleted, and a
    small idle-agent cap."""
    stale = RuntimeConfig(overdue_grace=float(period), horizon=float(4 * period))
    return (
        Variant("default", RuntimeConfig()),
        Variant(f"overdue_grace={period:g},horizon={4 * period:g}", stale),
        Variant("default+DELETE", RuntimeConfig(), delete_finished=True),
        Variant("max_idle_agents=10000", RuntimeConfig(max_idle_agents=10_000)),
    )


class Sample(NamedTuple):
    """One checkpoint: what the tree holds and what the runtime holds."""

    agents_seen: int
    step: int
    tree_nodes: int  # nodes but the root
    tree_tokens: int  # device tokens held by the tree
    agents_with_path: int  # agents whose prompt still has a node in the tree
    owned_nodes: int  # NodeOwners.n_nodes
    owners: int  # NodeOwners.n_owners
    owner_refs: int  # sum over tree nodes of the node's owners
    table_entries: int  # len(runtime.table)
    namespaces: int
    due_entries: int  # every namespace's due heap


class Retained(NamedTuple):
    """tracemalloc over the last ``agents`` agents: live bytes the runtime allocated while
    they passed through, read after the run (what their passage left behind)."""

    agents: int
    runtime_bytes: int

    @property
    def bytes_per_agent(self) -> float:
        return self.runtime_bytes / max(1, self.agents)


class Churn:
    """The agents' prompts and calls; the cache and the runtime under one variant."""

    def __init__(self, params: ChurnParams, variant: Variant) -> None:
        self.params, self.variant = params, variant
        self.runtime = ScaleSimRuntime(variant.config)
        self.tier = RadixTier(
            params.capacity_tokens,
            strategy=ScaleSimStrategy(self.runtime),
            on_path=self._record,
            headroom_tokens=params.headroom_tokens,
        )
        self._next_token = 1
        self._personas: list[list[int]] = []  # by namespace index
        self._prompts: dict[int, list[int]] = {}  # live agents' latest prompt
        self._owner = ""
        self._path = array("q")  # the prompt being inserted
        self.hit_tokens = self.prompt_tokens = 0

    def namespace_of(self, agent: int) -> str:
        return f"sim{agent // self.params.namespace_agents}"

    def step(self, step: int, batch: Sequence[tuple[int, bool]]) -> None:
        """One simulation step: every call of ``batch``, then the step's control updates."""
        leaving: dict[str, dict[str, float | None]] = {}
        for agent, last in batch:
            self.call(agent, step=step, last=last)
            if last and self.params.final_hint is FinalHint.UPDATE:
                leaving.setdefault(self.namespace_of(agent), {})[f"a{agent}"] = None
        for namespace, next_call in leaving.items():
            self.runtime.apply(DistanceUpdate(namespace, step, None, next_call))
        if self.variant.delete_finished:
            size, total = self.params.namespace_agents, self.params.agents
            for agent, last in batch:
                if last and ((agent + 1) % size == 0 or agent + 1 == total):
                    self.runtime.drop_namespace(self.namespace_of(agent))
        if self.params.due_poll_steps and step % self.params.due_poll_steps == 0:
            self.runtime.due_owners()

    def call(self, agent: int, *, step: int, last: bool) -> None:
        """One request: metadata to the runtime, then match, evict, insert, release."""
        namespace_index = agent // self.params.namespace_agents
        if namespace_index == len(self._personas):
            self._personas.append(self._segment(_PERSONA_TOKENS))
        prompt = self._prompts.pop(agent, None)
        if prompt is None:
            prompt = self._personas[namespace_index] + self._segment(_MEMORY_TOKENS)
        prompt = prompt + self._segment(_OBSERVATION_TOKENS)
        next_call: float | None = step + self.params.period
        if last and self.params.final_hint is FinalHint.NULL:
            next_call = None
        self._owner = self.runtime.observe(
            AgentMeta(f"a{agent}", self.namespace_of(agent), step, next_call)
        )
        self._path = array("q", prompt)
        admission = self.tier.admit(self._path, 0)
        if admission is not None:
            self.hit_tokens += admission.gpu_hit
            self.tier.release(admission)
        self.prompt_tokens += len(prompt)
        if not last:
            self._prompts[agent] = prompt

    def sample(self, *, agents_seen: int, step: int) -> Sample:
        """Read the tree (public node attributes) and the runtime at this instant."""
        nodes = tokens = refs = 0
        for node in _tree_nodes(self.tier.cache.tree_core.root_node):
            nodes += 1
            tokens += 0 if node.evicted else len(node.key)
            refs += len(list(self.runtime.owners.of(node)))
        owners = self.runtime.owners
        return Sample(
            agents_seen,
            step,
            nodes,
            tokens,
            self._agents_with_path(agents_seen),
            owners.n_nodes,
            owners.n_owners,
            refs,
            len(self.runtime.table),
            len(self.runtime.namespaces()),
            due_entries(self.runtime),
        )

    def _segment(self, n_tokens: int) -> list[int]:
        start = self._next_token
        self._next_token += n_tokens
        return list(range(start, self._next_token))

    def _record(self, leaf: Any, end_tokens: int, call_index: int) -> None:
        """The live server's checkpoint hook: the request's agent owns the inserted path (but
        the tail its next call is not expected to repeat)."""
        self.runtime.record_path(leaf, self._owner, tokens=self._path[:end_tokens])

    def _agents_with_path(self, agents_seen: int) -> int:
        """Agents whose simulation's persona (every prompt's first node) is in the tree."""
        children = self.tier.cache.tree_core.root_node.children
        size = self.params.namespace_agents
        return sum(
            min(size, agents_seen - index * size)
            for index, persona in enumerate(self._personas)
            if persona[0] in children
        )


def due_entries(runtime: ScaleSimRuntime) -> int:
    """Entries of every namespace's due heap (read privately: no public view exists)."""
    return sum(len(state.due) for state in runtime._namespaces.values())


def _tree_nodes(root: Any) -> Iterator[Any]:
    stack = list(root.children.values())
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children.values())


def runtime_bytes() -> int:
    """Live bytes traced by tracemalloc whose allocation was in the runtime's files."""
    filters = [tracemalloc.Filter(True, pattern) for pattern in RUNTIME_FILES]
    snapshot = tracemalloc.take_snapshot().filter_traces(filters)
    return sum(stat.size for stat in snapshot.statistics("filename"))


def schedule(params: ChurnParams) -> Iterator[tuple[int, list[tuple[int, bool]]]]:
    """(step, [(agent, is its last call)]) in step order: agent i arrives at step
    ``i // arrivals`` and calls every ``period`` steps, ``calls`` times."""
    last_arrival = (params.agents - 1) // params.arrivals
    for step in range(last_arrival + (params.calls - 1) * params.period + 1):
        batch = []
        for call in range(params.calls):
            arrival = step - call * params.period
            if 0 <= arrival <= last_arrival:
                first = arrival * params.arrivals
                end = min(params.agents, first + params.arrivals)
                batch += [(agent, call == params.calls - 1) for agent in range(first, end)]
        yield step, batch


def run_variant(params: ChurnParams, variant: Variant) -> dict[str, Any]:
    """Drive one variant through the whole churn; its samples, retained bytes and totals."""
    churn = Churn(params, variant)
    every = max(1, params.agents // params.checkpoints)
    traced_step = -(-max(0, params.agents - params.traced_agents) // params.arrivals)
    samples: list[Sample] = []
    agents_seen = departed = 0
    start = time.perf_counter()
    for step, batch in schedule(params):
        if step == traced_step and params.traced_agents > 0:
            tracemalloc.start()  # the agents arriving from here on pass through traced
        churn.step(step, batch)
        agents_seen = max([agents_seen, *(agent + 1 for agent, _ in batch)])
        departed += sum(last for _, last in batch)
        if departed >= every * (len(samples) + 1):
            samples.append(churn.sample(agents_seen=agents_seen, step=step))
    seconds = time.perf_counter() - start
    traced = max(0, params.agents - traced_step * params.arrivals)
    retained = Retained(traced, runtime_bytes() if tracemalloc.is_tracing() else 0)
    tracemalloc.stop()
    return {
        "variant": variant.name,
        "config": dataclasses.asdict(variant.config),
        "delete_finished": variant.delete_finished,
        "seconds": seconds,
        "hit_ratio": churn.hit_tokens / max(1, churn.prompt_tokens),
        "retained": retained._asdict() | {"bytes_per_agent": retained.bytes_per_agent},
        "samples": [sample._asdict() for sample in samples],
    }


def machine_name() -> str:
    """A file-name-safe name of this machine, e.g. cpu-x86-64-2c (as bench/kernels.py)."""
    label = f"cpu-{platform.machine()}-{os.cpu_count()}c"
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def run(params: ChurnParams, variants: Sequence[Variant]) -> dict[str, Any]:
    """Every variant on the same workload; the JSON result."""
    return {
        "machine": machine_name(),
        "params": dataclasses.asdict(params) | {"final_hint": params.final_hint.value},
        "variants": [run_variant(params, variant) for variant in variants],
    }


#: Sample fields shown in the tables (a field name with spaces is its column title).
_COLUMNS = tuple(name for name in Sample._fields if name not in ("step", "tree_tokens"))


def render(result: dict[str, Any]) -> str:
    """The Markdown report (also printed): one table per variant, one row per checkpoint."""
    params = result["params"]
    lines = [
        f"# Churn: {params['agents']:,} agents through SGLang's radix cache ({result['machine']})",
        "",
        f"Params: `{json.dumps(params)}`.",
        "",
        "Retained: tracemalloc's live bytes, allocated in scalesim/runtime and scalesim/distance "
        "while the last agents passed through, read after the run, per traced agent. Rows: "
        "checkpoints (owner refs: sum over tree nodes of their owners).",
    ]
    for variant in result["variants"]:
        retained = variant["retained"]
        lines += [
            "",
            f"## {variant['variant']}",
            "",
            f"Retained {retained['runtime_bytes'] / 1024:,.0f} KiB over {retained['agents']:,} "
            f"agents: {retained['bytes_per_agent']:,.1f} bytes per agent. Device hit ratio "
            f"{variant['hit_ratio']:.3f}; {variant['seconds']:.1f} s.",
            "",
            "| " + " | ".join(name.replace("_", " ") for name in _COLUMNS) + " |",
            "|" + "---|" * len(_COLUMNS),
        ]
        for sample in variant["samples"]:
            lines.append("| " + " | ".join(f"{sample[name]:,}" for name in _COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def parse_params(argv: list[str] | None) -> tuple[ChurnParams, Path]:
    """Every :class:`ChurnParams` field as ``--field-name``; and ``--out-dir``."""
    defaults = ChurnParams()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for field in dataclasses.fields(ChurnParams):
        flag, default = "--" + field.name.replace("_", "-"), getattr(defaults, field.name)
        if isinstance(default, FinalHint):
            parser.add_argument(
                flag, type=FinalHint, default=default, choices=list(FinalHint), metavar="HINT"
            )
        else:
            parser.add_argument(flag, type=int, default=default, metavar="N")
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    names = [field.name for field in dataclasses.fields(ChurnParams)]
    return ChurnParams(**{name: getattr(args, name) for name in names}), args.out_dir


def main(argv: list[str] | None = None) -> None:
    params, out_dir = parse_params(argv)
    result = run(params, default_variants(params.period))
    report = render(result)
    print(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    hint = params.final_hint
    suffix = "" if hint is FinalHint.UPDATE else f"-{hint.value}-hints"
    stem = out_dir / f"churn-{result['machine']}{suffix}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report)


if __name__ == "__main__":
    main()
