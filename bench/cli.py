"""``scalesim bench gen | replay | sweep | grid | hints | adapters | live | soak``.

Traces, replays and live runs.

Who calls it: ``scalesim/cli.py`` delegates ``scalesim bench ...`` here; also runnable
as ``python -m scalesim.bench.cli``. Prints a table on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from scalesim.runtime import PrefixOwnership, QueueOrder

from . import adapter_sweep, grid
from .costmodel import CostModel, load_cost_model
from .hint_noise import check_level
from .hint_sweep import DEFAULT_LEVELS, run_sweep
from .hint_sweep import markdown as hint_markdown
from .hint_sweep import write as write_hint_sweep
from .replay.engine import replay_policies
from .replay.policies import INFINITE
from .replay.prompts import PromptBook
from .replay.result import Mode, PolicyResult, ReplayConfig
from .sweep import results_json, table, write_sweep
from .trace import Trace, read_trace, write_trace

_DEFAULT_POLICIES = "lru,scalesim,belady,infinite"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scalesim bench")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("gen", help="generate a workload trace")
    gen.add_argument(
        "--workload",
        required=True,
        help="town, independent, diffusion, workflow, schedule, or from real data: village, social",
    )
    gen.add_argument("--agents", type=int, required=True, help="distinct agents (up to 10,000+)")
    gen.add_argument("--steps", type=int, required=True, help="10 s steps (8,640 = one day)")
    gen.add_argument("--seed", type=int, default=0, help="same seed, same trace")
    gen.add_argument("--loras", action="store_true", help="give every agent its own adapter")
    gen.add_argument("-o", "--output", type=Path, required=True, help="trace file (.jsonl)")
    gen.add_argument(
        "--data-dir",
        type=Path,
        help="real data sets for village/social (default: $SCALESIM_DATA_DIR, else "
        "shared/data beside the repository checkout)",
    )
    defaults = ReplayConfig(memory_ratio=1.0)
    helps = {
        "replay": "replay a trace against cache policies",
        "sweep": "replay a trace over several memory ratios",
        "grid": "replay a trace in both modes over several host ratios (one memory ratio)",
        "hints": "replay ScaleSim with the trace's own hints, then exact to adversarial ones",
        "adapters": "replay a trace with adapters over several GPU adapter slot counts",
    }
    for name, text in helps.items():
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("trace", type=Path, help="trace file written by `gen`")
        cmd.add_argument(
            "--policies",
            default=adapter_sweep.DEFAULT_POLICIES if name == "adapters" else _DEFAULT_POLICIES,
            help="comma-separated: scalesim, belady, infinite and SGLang's own (lru, lfu, ...)",
        )
        if name != "sweep":
            cmd.add_argument(
                "--memory-ratio",
                type=float,
                required=name == "replay",
                default=0.25,
                help="GPU KV capacity / the trace's reusable prefix working set",
            )
        if name == "replay":
            cmd.add_argument("--json", type=Path, help="also write the results as JSON here")
        else:
            cmd.add_argument("--out", type=Path, required=True, help="output stem (no suffix)")
        if name == "hints":
            cmd.add_argument("--levels", default=DEFAULT_LEVELS, help="comma-separated levels")
        elif name == "adapters":
            cmd.add_argument("--slots", default=adapter_sweep.DEFAULT_SLOTS, help="comma-separated")
        elif name == "grid":
            cmd.add_argument("--modes", default="lockstep,ooo", help="comma-separated")
            cmd.add_argument("--host-ratios", default="0,0.5,1", help="comma-separated")
        elif name == "sweep":
            cmd.add_argument("--memory-ratios", default="0.1,0.25,0.5", help="comma-separated")
            cmd.add_argument(
                "--primary-ratio", type=float, default=0.25, help="the ratio under `results`"
            )
        if name != "grid":  # its --host-ratios and --modes replace these
            cmd.add_argument(
                "--host-ratio",
                type=float,
                default=defaults.host_ratio,
                help="host KV capacity / the same working set (0: no host tier)",
            )
            cmd.add_argument("--mode", choices=[m.value for m in Mode], default="lockstep")
        if name != "adapters":  # the sweep's --slots sets them
            cmd.add_argument("--lora-slots", type=int, help="GPU adapter slots (default unbounded)")
        cmd.add_argument(
            "--queue-order",
            choices=[order.value for order in QueueOrder],
            default=QueueOrder.ARRIVAL.value,
            help="order ScaleSim admits ready calls in (lag: oldest step first; others: arrival)",
        )
        cmd.add_argument(
            "--prefix-ownership",
            choices=[choice.value for choice in PrefixOwnership],
            default=PrefixOwnership.LEARNED.value,
            help="how much of its prompt a ScaleSim agent owns (learned: what its next call is "
            "expected to repeat; whole: every token)",
        )
        cmd.add_argument(
            "--token-scale",
            type=int,
            default=defaults.token_scale,
            help="real tokens per replayed token (speed vs resolution)",
        )
        cmd.add_argument(
            "--evict-headroom",
            type=_fraction,
            default=defaults.evict_headroom,
            help="fraction of the device pool freed beyond a request's need when the tree "
            "evicts (speed; 0: exactly what it lacks, as the server)",
        )
        cmd.add_argument(
            "--overdue-grace",
            type=float,
            default=defaults.overdue_grace_steps,
            help="steps after which ScaleSim forgets a hinted call that did not come",
        )
        cmd.add_argument("--cost-model", type=Path, help="JSON of CostModel fields")
        cmd.add_argument("--progress", action="store_true", help="tqdm bar on stderr")
    from .live.run import add_live_arguments

    add_live_arguments(sub.add_parser("live", help="drive a trace against real servers"))
    from .soak import add_soak_arguments

    add_soak_arguments(sub.add_parser("soak", help="load and soak one real server for minutes"))
    return parser


def _fraction(text: str) -> float:
    """A number in [0, 1) from the command line."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _config(args: argparse.Namespace, ratio: float) -> ReplayConfig:
    cost = load_cost_model(args.cost_model) if args.cost_model else CostModel()
    return ReplayConfig(
        memory_ratio=ratio,
        host_ratio=args.host_ratio,
        lora_slots=args.lora_slots,
        mode=Mode(args.mode),
        queue_order=QueueOrder(args.queue_order),
        prefix_ownership=PrefixOwnership(args.prefix_ownership),
        token_scale=args.token_scale,
        evict_headroom=args.evict_headroom,
        overdue_grace_steps=args.overdue_grace,
        cost=cost,
    )


def _meta(trace: Trace, args: argparse.Namespace, wall_s: dict[str, float]) -> dict[str, Any]:
    header = trace.header
    book = PromptBook(trace, token_scale=args.token_scale)
    return {
        "trace": {
            "name": header.name,
            "agents": header.agents,
            "steps": header.steps,
            "calls": len(trace.calls),
            "seed": header.seed,
            "working_set_replay_tokens": book.working_set_tokens(),
            "reusable_distinct_replay_tokens": book.reusable_tokens(),
            "working_set_definition": "peak live reusable prefix (chains in >= 2 prompts, "
            "live from first to last use), replay tokens of token_scale real tokens",
        },
        "params": {
            "host_ratio": args.host_ratio,
            "lora_slots": args.lora_slots,
            "mode": args.mode,
            "queue_order": args.queue_order,
            "prefix_ownership": args.prefix_ownership,
            "evict_headroom": _config(args, 1.0).evict_headroom,
            "infinite": "memory ratio infinity (never evicts); run once per sweep",
            "token_scale": args.token_scale,
            "overdue_grace_steps": args.overdue_grace,
            "cost_model": vars(_config(args, 1.0).cost),
        },
        "machine": {
            "python": platform.python_version(),
            "cpu": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "gpu": None,
            "replay_wall_s": wall_s,
        },
    }


def _policies(args: argparse.Namespace) -> list[str]:
    return [name.strip() for name in args.policies.split(",") if name.strip()]


def _replay(
    args: argparse.Namespace, trace: Trace, ratio: float, policies: list[str]
) -> dict[str, PolicyResult]:
    return replay_policies(trace, policies, _config(args, ratio), progress=args.progress)


def _run_replay(args: argparse.Namespace) -> int:
    trace = read_trace(args.trace)
    started = time.perf_counter()
    results = _replay(args, trace, args.memory_ratio, _policies(args))
    wall = {str(args.memory_ratio): round(time.perf_counter() - started, 1)}
    print(table(results))
    if args.json:
        document = {**_meta(trace, args, wall), "results": results_json(results)}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return 0


def _run_sweep(args: argparse.Namespace) -> int:
    """Replay every ratio; ``infinite`` does not depend on the ratio and runs once."""
    trace = read_trace(args.trace)
    policies = _policies(args)
    by_ratio: dict[float, dict[str, PolicyResult]] = {}
    wall: dict[str, float] = {}
    once: dict[str, PolicyResult] = {}
    for ratio in sorted(float(r) for r in args.memory_ratios.split(",")):
        started = time.perf_counter()
        todo = [p for p in policies if p not in once]
        fresh = _replay(args, trace, ratio, todo)
        if INFINITE in fresh:
            once[INFINITE] = fresh[INFINITE]
        by_ratio[ratio] = {p: fresh[p] if p in fresh else once[p] for p in policies}
        wall[str(ratio)] = round(time.perf_counter() - started, 1)
        print(
            f"memory ratio {ratio} ({wall[str(ratio)]} s)\n{table(by_ratio[ratio])}\n", flush=True
        )
    primary = args.primary_ratio if args.primary_ratio in by_ratio else min(by_ratio)
    write_sweep(by_ratio, stem=args.out, meta=_meta(trace, args, wall), primary=primary)
    return 0


def _run_gen(args: argparse.Namespace) -> int:
    """Write the trace; a missing real data set is a one-line error (exit status 2)."""
    from .workloads import generate

    try:
        trace = generate(
            args.workload,
            agents=args.agents,
            steps=args.steps,
            seed=args.seed,
            loras=args.loras,
            data_dir=args.data_dir,
        )
    except FileNotFoundError as error:
        print(f"scalesim bench gen: {error}", file=sys.stderr)
        return 2
    write_trace(args.output, trace)
    print(f"{args.output}: {len(trace.calls)} calls, {len(trace.hints)} hints")
    return 0


def _run_hints(args: argparse.Namespace) -> int:
    trace = read_trace(args.trace)
    levels = [check_level(level.strip()) for level in args.levels.split(",") if level.strip()]
    started = time.perf_counter()
    body = run_sweep(trace, _config(args, args.memory_ratio), levels)
    wall = {str(args.memory_ratio): round(time.perf_counter() - started, 1)}
    meta = _meta(trace, args, wall)
    meta["params"]["memory_ratio"] = args.memory_ratio
    document = {**meta, **body}
    write_hint_sweep(document, args.out)
    print(hint_markdown(document, args.out.name))
    return 0


def _run_grid(args: argparse.Namespace) -> int:
    trace = read_trace(args.trace)
    modes = [Mode(mode.strip()) for mode in args.modes.split(",") if mode.strip()]
    hosts = [float(host) for host in args.host_ratios.split(",") if host.strip()]
    args.mode, args.host_ratio = modes[0].value, hosts[0]  # each cell sets its own
    body = grid.run_grid(
        trace,
        _config(args, args.memory_ratio),
        modes=modes,
        host_ratios=hosts,
        policies=_policies(args),
        replay=lambda t, policies, config: replay_policies(
            t, policies, config, progress=args.progress
        ),
    )
    wall = {f"{cell['mode']}/{cell['host_ratio']}": cell["wall_s"] for cell in body["cells"]}
    meta = _meta(trace, args, wall)
    meta["params"].update(memory_ratio=args.memory_ratio, modes=args.modes, host_ratios=hosts)
    del meta["params"]["mode"], meta["params"]["host_ratio"]
    document = {**meta, **body}
    grid.write(document, args.out)
    print(grid.markdown(document, args.out.name))
    return 0


def _run_adapters(args: argparse.Namespace) -> int:
    trace, slots = read_trace(args.trace), adapter_sweep.parse_slots(args.slots)
    args.lora_slots = None  # each run's slot count comes from --slots
    config = _config(args, args.memory_ratio)
    runs = adapter_sweep.run_sweep(
        trace, config, slots, policies=_policies(args), progress=args.progress
    )
    meta = _meta(trace, args, {str(run.lora_slots): run.wall_s for run in runs})
    meta["params"].update(memory_ratio=args.memory_ratio, lora_slots=slots)
    document = {**meta, **adapter_sweep.sweep_json(runs)}
    adapter_sweep.write(document, args.out)
    print(adapter_sweep.table(document))
    return 0


def main(argv: list[str]) -> int:
    """Run one ``scalesim bench`` subcommand; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "gen":
        return _run_gen(args)
    if args.command == "replay":
        return _run_replay(args)
    if args.command == "hints":
        return _run_hints(args)
    if args.command == "adapters":
        return _run_adapters(args)
    if args.command == "grid":
        return _run_grid(args)
    if args.command == "live":
        from .live.run import run_live

        return run_live(args)
    if args.command == "soak":
        from .soak import run_from_args

        return run_from_args(args)
    return _run_sweep(args)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
