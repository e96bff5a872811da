"""``scalesim bench live TRACE``: one real ``scalesim serve`` per policy, the same trace on each.

Who calls it: ``bench/cli.py`` (the ``live`` subcommand). For each policy it starts a server
(:func:`scalesim.server_process.running_server`: a free loopback port, always stopped) — or,
with ``--workers N``, one ``scalesim cluster`` per policy and router routing
(:func:`scalesim.cluster.running_cluster`; results keyed ``policy+routing``) — drives
the trace through :class:`scalesim.client.AsyncScaleSim` with ``bench/live/driver.py`` (prompts
from ``bench/live/prompts.py`` sent to ``/v1/completions``), reads ScaleSim's counters, and
stops it. The cache replay's prediction for the same trace and ratios runs first (it is fast
and fails fast). Prints tables on stdout, progress on stderr; with ``--json`` writes the JSON,
a Markdown table and a PNG (``bench/live/document.py``, ``bench/live/report.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import openai
from tqdm import tqdm

from scalesim.client import AsyncScaleSim, ScaleSimError
from scalesim.client.wire import model_name
from scalesim.cluster import ClusterOptions, RouterError, Routing, running_cluster
from scalesim.config import CpuAttention
from scalesim.demo import default_home
from scalesim.server_process import ServerStartError, exit_on_signals, running_server
from scalesim.tiny_model import TinyModelSize

from ..replay.result import Mode, PolicyResult
from ..trace import Call, Trace, read_trace
from . import report
from .document import PolicyRun, build_document, load_average
from .driver import CallOutcome, Driver, IssueRules, NextCalls, Reply
from .prompts import PromptWriter, WordPool
from .setup import POLICIES, SERVED_MODEL_NAME, LiveParams, LiveSetup, namespace_of

#: Policies whose servers take distance ticks (stock SGLang has no ScaleSim routes).
HINTED = frozenset({"scalesim"})


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``live`` subcommand's options (api.md section 5, plus run-size knobs)."""
    parser.add_argument("trace", type=Path, help="trace file (trace v1, e.g. from `gen`)")
    parser.add_argument("--policies", default="stock,scalesim", help="comma-separated")
    parser.add_argument(
        "--memory-ratio", type=float, default=0.25, help="device KV pool / working set"
    )
    parser.add_argument(
        "--host-ratio", type=float, default=0.0, help="host KV pool / working set (0: none)"
    )
    parser.add_argument("--lora-slots", type=int, help="adapters per batch (default: all)")
    parser.add_argument("--mode", choices=[m.value for m in Mode], default="lockstep")
    parser.add_argument("--json", type=Path, help="write JSON here, .md and .png beside it")
    parser.add_argument("--progress", action="store_true", help="tqdm bars on stderr")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    parser.add_argument(
        "--max-output-tokens", type=int, help="cap every call's output_len (CPU runs)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="N >= 1: run each policy on a scalesim cluster of N workers behind sglang-router",
    )
    parser.add_argument(
        "--routings",
        default="affinity,round_robin",
        help="with --workers: the router routings to compare, one run each (comma-separated)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="run every policy N times, each on a fresh server, alternating the order; the "
        "median run of each is reported (a shared machine's speed drifts between runs)",
    )
    parser.add_argument(
        "--cpu-attention",
        choices=[attention.value for attention in CpuAttention],
        default=CpuAttention.PREFIX.value,
        help="without a GPU, both servers' attention: from new tokens only, as on a GPU "
        "(prefix), or SGLang's CPU attention, which recomputes the cached prefix's (sglang)",
    )
    parser.add_argument(
        "--model-size",
        choices=[size.value for size in TinyModelSize],
        default=TinyModelSize.BENCH.value,
        help=argparse.SUPPRESS,  # tests use the tiny preset
    )


def params_from(args: argparse.Namespace) -> LiveParams:
    """The validated settings of a parsed command line."""
    return LiveParams(
        policies=tuple(name.strip() for name in args.policies.split(",") if name.strip()),
        memory_ratio=args.memory_ratio,
        host_ratio=args.host_ratio,
        lora_slots=args.lora_slots,
        mode=Mode(args.mode),
        concurrency=args.concurrency,
        model_size=TinyModelSize(args.model_size),
        cpu_attention=CpuAttention(args.cpu_attention),
        repeats=args.repeats,
        max_output_tokens=args.max_output_tokens,
        workers=args.workers,
        routings=tuple(r.strip() for r in args.routings.split(",") if r.strip())
        if args.workers
        else (),
    )


@dataclass(frozen=True)
class LiveJob:
    """What every policy's run shares: the trace, its setup, the settings, the prompt text."""

    trace: Trace
    setup: LiveSetup
    params: LiveParams
    writer: PromptWriter
    progress: bool = False


def run_live(args: argparse.Namespace) -> int:
    """Run ``scalesim bench live``; returns the exit status."""
    try:
        params = params_from(args)
    except ValueError as err:
        print(f"scalesim bench live: {err}", file=sys.stderr)
        return 2
    exit_on_signals()  # SIGTERM stops the servers, as Ctrl-C does
    load_at_start = load_average()
    trace = read_trace(args.trace)
    print(f"[live] {trace.header.name}: {len(trace.calls)} calls, {len(trace.hints)} hints")
    predicted = predict(trace, params, progress=args.progress)
    setup = LiveSetup.build(trace, params)
    pools = setup.pools
    print(
        f"[live] working set {pools.working_set_tokens} tokens; device pool "
        f"{pools.device_tokens}, host pool {pools.host_tokens}; model {setup.model.path}"
    )
    writer = PromptWriter(WordPool.from_file(setup.model.path / "tokenizer.json"))
    job = LiveJob(trace, setup, params, writer, progress=args.progress)
    repeats: dict[str, list[PolicyRun]] = {}
    schedule = params.schedule()
    try:
        for index, (policy, routing) in enumerate(schedule):
            name = run_name(policy, routing)
            logs = default_home() / "bench-live" / f"{args.trace.stem}-{name}"
            turn = f" (run {index + 1} of {len(schedule)})" if params.repeats > 1 else ""
            print(f"[live] {name}: starting the server(s){turn} (logs: {logs}*)", flush=True)
            if routing is None:
                run = run_policy(policy, job, log_path=logs.with_name(f"{logs.name}.log"))
            else:
                run = run_cluster_policy(policy, Routing(routing), job, log_dir=logs)
            repeats.setdefault(name, []).append(run)
    except (ServerStartError, RouterError) as err:
        print(f"[live] {err}", file=sys.stderr)
        return 1
    runs = {name: median_run(made) for name, made in repeats.items()}
    print(report.table({policy: run.result for policy, run in runs.items()}, predicted))
    makespans = {name: [run.result.makespan_s for run in made] for name, made in repeats.items()}
    if args.json:
        document = build_document(
            trace, setup, params, runs=runs, predicted=predicted, makespans=makespans
        )
        document["machine"]["load_average_1m_at_start"] = load_at_start
        for line in report.comparison(document):
            print(f"[live] {line}")
        md_path, png_path = report.write(document, args.json)
        print(f"[live] wrote {args.json}, {md_path}, {png_path}")
    return 0


def predict(trace: Trace, params: LiveParams, *, progress: bool) -> dict[str, PolicyResult]:
    """The cache replay's results for stock (``lru``) and ``scalesim`` under the same ratios, with
    Belady and infinite memory as the bounds that show how much this ratio lets any policy save."""
    from ..replay.engine import replay_policies
    from ..sweep import table

    predicted = replay_policies(
        trace, ["lru", "scalesim", "belady", "infinite"], params.replay_config(), progress=progress
    )
    print(f"[live] replay prediction (modelled):\n{table(predicted)}", flush=True)
    return predicted


def median_run(made: list[PolicyRun]) -> PolicyRun:
    """The run of median makespan (of an even count, the faster of the middle two)."""
    ordered = sorted(made, key=lambda run: run.result.makespan_s)
    return ordered[(len(ordered) - 1) // 2]


def run_name(policy: str, routing: str | None) -> str:
    """A run's key in ``results``: the policy, plus ``+routing`` for a cluster run."""
    return policy if routing is None else f"{policy}+{routing}"


def run_policy(policy: str, job: LiveJob, *, log_path: Path) -> PolicyRun:
    """Serve ``policy``, drive the whole trace, stop the server; the result and the timeline."""
    serve_args = [*job.setup.serve_args, *POLICIES[policy]]
    with running_server(serve_args, log_path=log_path) as server:
        print(f"[live] {policy}: healthy after {server.startup_s:.1f} s", flush=True)
        return asyncio.run(_drive_policy(policy, server.base_url, server.startup_s, job))


def run_cluster_policy(policy: str, routing: Routing, job: LiveJob, *, log_dir: Path) -> PolicyRun:
    """As :func:`run_policy` on a ``scalesim cluster`` of ``job.params.workers`` workers."""
    serve_args = [*job.setup.serve_args, *POLICIES[policy]]
    options = ClusterOptions(workers=job.params.workers, routing=routing, log_dir=log_dir)
    with running_cluster(options, serve_args) as cluster:
        print(f"[live] {policy}: cluster ready after {cluster.startup_s:.1f} s", flush=True)
        return asyncio.run(_drive_policy(policy, cluster.url, cluster.startup_s, job))


class _Network:
    """``send`` and ``tick`` of the driver, bound to one server; counts the ticks."""

    def __init__(self, sim: AsyncScaleSim, job: LiveJob, *, policy: str) -> None:
        self.sim, self.job, self.policy = sim, job, policy
        self.ticks_sent = self.ticks_failed = 0

    async def send(self, index: int, call: Call) -> Reply:
        """One call as a plain-text completion with the agent's metadata; errors are replies."""
        sim, params = self.sim, self.job.params
        try:
            extra = sim.extra_body(call.agent, clock=call.step, extra_body={"ignore_eos": True})
            response = await sim.openai.completions.create(
                model=model_name(SERVED_MODEL_NAME, call.lora),
                prompt=self.job.writer.text(call),
                max_tokens=params.output_tokens(call.output_len),
                temperature=0.0,
                extra_body=extra,
                extra_headers=sim.routing_headers(call.agent),  # affinity behind a router
            )
        except (openai.APIError, ScaleSimError) as err:
            return Reply(error=f"{type(err).__name__}: {err}"[:500])
        usage = response.usage
        if usage is None:
            return Reply(error="the reply has no usage")
        details = usage.prompt_tokens_details
        cached = (details.cached_tokens or 0) if details is not None else 0
        return Reply(usage.prompt_tokens, cached, usage.completion_tokens)

    async def tick(self, clock: int, due: NextCalls) -> None:
        """One distance update; a refused one is counted and reported, the run goes on."""
        try:
            await self.sim.tick(clock, due)
            self.ticks_sent += 1
        except ScaleSimError as err:
            self.ticks_failed += 1
            print(f"[live] {self.policy}: tick at {clock} failed: {err}", file=sys.stderr)


async def _drive_policy(policy: str, url: str, startup_s: float, job: LiveJob) -> PolicyRun:
    trace, params = job.trace, job.params
    namespace = namespace_of(trace)
    async with AsyncScaleSim(url, namespace=namespace, model=SERVED_MODEL_NAME) as sim:
        network = _Network(sim, job, policy=policy)
        rules = IssueRules(params.mode, params.ooo_window_steps, params.concurrency)
        driver = Driver(trace.calls, trace.hints, rules=rules, now=time.monotonic)
        bar = tqdm(total=len(trace.calls), desc=policy, file=sys.stderr, disable=not job.progress)
        started = time.monotonic()
        outcomes = await driver.run(
            network.send,
            tick=network.tick if policy in HINTED else None,
            on_done=lambda _: bar.update(1),
        )
        bar.close()
        counters = (await sim.state()).counters if policy in HINTED else None
    counts = report.Counts(
        expected_prompt_tokens=_expected_tokens(trace, outcomes),
        kv_prefetch_tokens=0 if counters is None else counters.get("kv_prefetch_tokens", 0),
        ticks=network.ticks_sent,
        tick_errors=network.ticks_failed,
        startup_s=startup_s,
        **_adapter_loads(counters),
    )
    calls = tuple(  # times from the first send
        replace(
            o, ready_s=o.ready_s - started, sent_s=o.sent_s - started, done_s=o.done_s - started
        )
        for o in outcomes
    )
    return PolicyRun(report.summarize(calls, started_s=0.0, counts=counts), calls)


#: ``GET /scalesim/v1/state`` counters of adapter loads (api.md section 4).
ADAPTER_COUNTERS = ("lora_loads_blocking", "lora_loads_prefetch", "lora_prefetch_failures")


def _adapter_loads(counters: Mapping[str, int] | None) -> dict[str, int | None]:
    """The server's adapter-load counters; all ``None`` without ScaleSim's state (stock)."""
    if counters is None:
        return dict.fromkeys(ADAPTER_COUNTERS)
    return {name: counters.get(name) for name in ADAPTER_COUNTERS}


def _expected_tokens(trace: Trace, outcomes: list[CallOutcome]) -> int:
    """The trace's prompt lengths of the calls that succeeded."""
    return sum(trace.calls[o.index].prompt_tokens for o in outcomes if o.reply.error is None)
