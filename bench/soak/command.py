"""``scalesim bench soak`` / ``python -m scalesim.bench.soak``: arguments, run, results.

Called by ``bench/cli.py`` (:func:`add_soak_arguments`, :func:`run_from_args`), by
``__main__`` and by ``tests/bench/test_soak.py`` (:func:`main`).
Invariants: the server is always stopped (``running_server``'s context); exit status 0 after
writing ``soak-<machine>.json``, ``.md`` and ``.png``, 1 if the server never started, 2 for
invalid parameters; it prints and writes, never asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from scalesim.demo import default_home
from scalesim.server_process import ServerStartError, exit_on_signals, running_server
from scalesim.tiny_model import ensure_tiny_model

from .document import document, serve_flags
from .load import drive
from .params import PARAM_HELP, RESULTS_DIR, SERVED_MODEL_NAME, SoakParams
from .report import render, write_plot

#: ``--help``'s description: the first line of the package's docstring.
DESCRIPTION = (
    "Load and soak: N simulations at once against one real ``scalesim serve``, for minutes."
)


def run(params: SoakParams, *, log_path: Path) -> dict[str, Any]:
    """Build (once) the tiny model, serve it, drive the load, stop the server; the JSON."""
    started = time.monotonic()
    model = ensure_tiny_model(default_home() / "tiny-model-0-loras", n_loras=0)
    args = ["--model-path", str(model.path), "--served-model-name", SERVED_MODEL_NAME]
    print(f"[soak] starting the server (log: {log_path})", flush=True)
    with running_server([*args, *serve_flags(params)], log_path=log_path) as server:
        print(f"[soak] healthy after {server.startup_s:.1f} s; {params}", flush=True)
        load = drive(server, params)
    wall_s = time.monotonic() - started
    return document(params, load, startup_s=server.startup_s, wall_s=wall_s)


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    """Every :class:`SoakParams` field as ``--field-name``; ``--out-dir`` and ``--log-path``."""
    defaults = SoakParams()
    for field in dataclasses.fields(SoakParams):
        default = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{PARAM_HELP[field.name]} (default {default:g})"
        parser.add_argument(flag, type=type(default), default=default, help=help_text)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument(
        "--log-path", type=Path, help="server log (default $SCALESIM_HOME/soak-serve.log)"
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run the soak as parsed; print and write the results. 1 if the server never started."""
    names = [field.name for field in dataclasses.fields(SoakParams)]
    try:
        params = SoakParams(**{name: getattr(args, name) for name in names})
    except ValueError as err:
        print(f"scalesim bench soak: {err}")
        return 2
    exit_on_signals()  # SIGTERM stops the server, as Ctrl-C does
    try:
        result = run(params, log_path=args.log_path or default_home() / "soak-serve.log")
    except ServerStartError as err:
        print(f"[soak] {err}")
        return 1
    report = render(result)
    print(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"soak-{result['machine']['name']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report)
    write_plot(result, stem.with_suffix(".png"))
    print(f"[soak] wrote {stem}.json, .md and .png")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    add_soak_arguments(parser)
    return run_from_args(parser.parse_args(argv))
