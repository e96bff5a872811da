"""A running cluster: workers, sglang-router in front, a monitor; always stopped as a whole.

Who calls it: ``scalesim cluster`` (``command.py``), the live bench with ``--workers`` and the
e2e tests. :func:`running_cluster` starts the local workers at once, waits for all of them,
then starts the router (so it registers healthy workers at its first check), waits until the
router lists every worker as healthy, starts the monitor and yields. On exit — normal, an
exception, Ctrl-C, or SIGTERM turned into ``SystemExit`` by the command — it stops the monitor,
the router and every worker's process group, whatever was started so far.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from scalesim.server_process import free_port, stop_process_group

from .monitor import WorkerEvent, WorkerMonitor
from .options import ClusterOptions
from .router import router_command, wait_router_ready
from .workers import LocalWorker, start_workers, stop_workers, wait_workers_healthy, worker_gpus


@dataclass(frozen=True)
class RunningCluster:
    """A ready cluster: the router's URL (give it to clients), its workers and its monitor."""

    url: str
    worker_urls: tuple[str, ...]
    local: tuple[LocalWorker, ...]
    monitor: WorkerMonitor
    router_log: Path
    startup_s: float

    @property
    def openai_base_url(self) -> str:
        """Base URL for the ``openai`` client."""
        return f"{self.url}/v1"


def print_event(event: WorkerEvent) -> None:
    """The default report: one line on stderr."""
    print(event, file=sys.stderr, flush=True)


@contextmanager
def running_cluster(
    options: ClusterOptions,
    serve_args: Sequence[str],
    *,
    report: Callable[[WorkerEvent], None] = print_event,
) -> Iterator[RunningCluster]:
    """Start the cluster ``options`` describes; yield it once ready; always stop all of it.

    Args:
        options: workers (or worker URLs), routing, the router's address, logs, timeouts.
        serve_args: every local worker's ``scalesim serve`` arguments (no host or port).
        report: receives worker events (a death, its removal from the router).

    Raises:
        ServerStartError: a worker did not start (its log is named).
        RouterError: the router did not start or did not see every worker.
    """
    started = time.monotonic()
    with ExitStack() as stack:
        local: list[LocalWorker] = []
        if options.workers:
            gpus = worker_gpus(options.workers, serve_args, os.environ)
            local = start_workers(
                serve_args, n_workers=options.workers, log_dir=options.log_dir, gpus=gpus
            )
            stack.callback(stop_workers, local)
            wait_workers_healthy(local, timeout_s=options.startup_timeout_s)
        urls = tuple(w.url for w in local) or options.worker_urls
        router_url, router_log = _start_router(stack, options, urls)
        monitor = WorkerMonitor(router_url, local=local, remote=options.worker_urls, report=report)
        monitor.start()
        stack.callback(monitor.stop)
        yield RunningCluster(
            router_url, urls, tuple(local), monitor, router_log, time.monotonic() - started
        )


def _start_router(
    stack: ExitStack, options: ClusterOptions, urls: Sequence[str]
) -> tuple[str, Path]:
    """Start sglang-router in front of ``urls`` (stopped by ``stack``); wait until it is ready."""
    port = options.port or free_port()
    command = router_command(urls, routing=options.routing, host=options.host, port=port)
    options.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = options.log_dir / "router.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    stack.callback(stop_process_group, process)
    host = "127.0.0.1" if options.host in ("0.0.0.0", "::") else options.host
    router_url = f"http://{host}:{port}"
    wait_router_ready(
        router_url,
        expected=urls,
        timeout_s=options.startup_timeout_s,
        alive=lambda: process.poll() is None,
    )
    return router_url, log_path
