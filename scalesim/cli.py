"""The ``scalesim`` command: ``serve``, ``cluster``, ``demo``, ``make-tiny-model`` and ``bench``.

``serve``, ``cluster`` and ``bench`` take the rest of the command line verbatim (``serve``
passes what it does not know to SGLang; ``cluster`` passes it to every worker's ``serve``;
``bench`` belongs to ``scalesim.bench.cli``). Heavy modules (torch,
sglang) are imported only by the subcommand that needs them, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from scalesim.tiny_model import TinyModelSize

_PASSTHROUGH = ("serve", "bench", "cluster")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser (``serve``/``bench`` arguments are parsed by their own modules)."""
    parser = argparse.ArgumentParser(
        prog="scalesim", description="Invocation-distance memory management for SGLang."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "serve", help="start SGLang's server with ScaleSim (scalesim serve --help)", add_help=False
    )
    commands.add_parser("bench", help="run a benchmark (scalesim bench --help)", add_help=False)
    commands.add_parser(
        "cluster",
        help="N scalesim serve workers behind sglang-router (scalesim cluster --help)",
        add_help=False,
    )
    demo = commands.add_parser("demo", help="serve the tiny model and run a multi-agent workload")
    from scalesim.demo import add_demo_arguments

    add_demo_arguments(demo)
    tiny = commands.add_parser("make-tiny-model", help="write the random-weight test model")
    tiny.add_argument("out_dir", type=Path, metavar="DIR")
    tiny.add_argument("--loras", type=int, default=0, help="number of LoRA adapters to write")
    tiny.add_argument(
        "--size", choices=[size.value for size in TinyModelSize], default=TinyModelSize.TINY.value
    )
    tiny.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``scalesim`` command; returns the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _PASSTHROUGH:
        return _run_passthrough(args[0], args[1:])
    options = build_parser().parse_args(args)
    if options.command == "demo":
        from scalesim.demo import run_demo_from_args

        return run_demo_from_args(options)
    from scalesim.tiny_model import make_tiny_model

    model = make_tiny_model(
        options.out_dir, n_loras=options.loras, size=TinyModelSize(options.size), seed=options.seed
    )
    print(f"wrote {model.path} with adapters: {', '.join(model.adapters) or 'none'}")
    return 0


def _run_passthrough(command: str, rest: list[str]) -> int:
    if command == "serve":
        from scalesim.serve import serve

        serve(rest)
    if command == "cluster":
        from scalesim.cluster.command import run_cluster

        return run_cluster(rest)
    # Importing SGLang's cache code pulls in its quantization modules, which warn on a
    # machine without CUDA about kernels the replay never uses.
    warnings.filterwarnings("ignore", message="Only CUDA.* support", category=UserWarning)
    from scalesim.bench.cli import main as bench_main

    return int(bench_main(rest))


if __name__ == "__main__":
    sys.exit(main())
