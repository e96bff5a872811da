"""``scalesim cluster``: start the cluster, print the router's URL, serve until told to stop.

Who calls it: ``scalesim/cli.py``. SIGTERM and SIGHUP become ``SystemExit`` and Ctrl-C a
``KeyboardInterrupt``, so :func:`~scalesim.cluster.running.running_cluster` unwinds and stops
the router and every worker in every case. Exit status: 0 after a signal, 1 when the cluster
did not start, 2 for a bad command line.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence

from scalesim.server_process import ServerStartError, exit_on_signals

from .options import ClusterArgumentError, parse_cluster_args
from .router import RouterError
from .running import running_cluster


def run_cluster(argv: Sequence[str]) -> int:
    """Run ``scalesim cluster ARGV`` until a signal; returns the exit status."""
    try:
        options, serve_args = parse_cluster_args(argv)
    except ClusterArgumentError as err:
        print(f"scalesim cluster: {err}", file=sys.stderr)
        return 2
    exit_on_signals()
    try:
        with running_cluster(options, serve_args) as cluster:
            print(
                f"[cluster] {len(cluster.worker_urls)} workers ({', '.join(cluster.worker_urls)}) "
                f"behind sglang-router, routing {options.routing.value}; ready after "
                f"{cluster.startup_s:.0f} s; logs in {options.log_dir}",
                file=sys.stderr,
            )
            print(cluster.url, flush=True)  # stdout: the URL alone, for scripts
            threading.Event().wait()
    except (ServerStartError, RouterError) as err:
        print(f"scalesim cluster: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, SystemExit):
        print("[cluster] stopped", file=sys.stderr)
    return 0
