"""Local ``scalesim serve`` workers of a cluster: started together, each on its own port (and GPU).

Who calls it: ``scalesim/cluster/running.py``. Every worker gets the same serve arguments plus
``--host 127.0.0.1 --port P`` (a free port each) and, on a CUDA machine, its own GPU
(``CUDA_VISIBLE_DEVICES``): one worker per GPU. All start at once (a CPU worker takes about a
minute to load; starting them one after another would add those minutes up) and run in their own
process groups, so :func:`stop_workers` reaches SGLang's scheduler and detokenizer as well.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from scalesim.serve import flag_value
from scalesim.server_process import ServerStartError, free_port, stop_process_group

_POLL_INTERVAL_S = 0.5


@dataclass(frozen=True)
class LocalWorker:
    """One started worker: its URL, process (own process group), log and GPU (None: CPU)."""

    index: int
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    gpu: str | None

    def exit_code(self) -> int | None:
        """The process's exit code, None while it runs."""
        return self.process.poll()


def worker_gpus(n_workers: int, serve_args: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """The GPU of each worker (empty list: CPU workers, no pinning).

    Raises:
        ServerStartError: a CUDA machine with fewer visible GPUs than workers.
    """
    if flag_value(serve_args, "--device") == "cpu":
        return []
    import torch

    if not torch.cuda.is_available():
        return []
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    gpus = (
        [g for g in visible.split(",") if g.strip()]
        if visible
        else [str(i) for i in range(torch.cuda.device_count())]
    )
    if len(gpus) < n_workers:
        raise ServerStartError(
            f"--workers {n_workers} runs one worker per GPU but {len(gpus)} GPU(s) are visible; "
            "start fewer workers, or start servers yourself and pass --worker-urls"
        )
    return gpus[:n_workers]


def start_workers(
    serve_args: Sequence[str], *, n_workers: int, log_dir: Path, gpus: Sequence[str]
) -> list[LocalWorker]:
    """Start ``n_workers`` ``scalesim serve`` processes at once; none is waited for here."""
    log_dir.mkdir(parents=True, exist_ok=True)
    started: list[LocalWorker] = []
    try:
        for index in range(n_workers):
            gpu = gpus[index] if gpus else None
            started.append(_start_one(index, serve_args, log_dir=log_dir, gpu=gpu))
    except OSError:
        stop_workers(started)
        raise
    return started


def _start_one(
    index: int, serve_args: Sequence[str], *, log_dir: Path, gpu: str | None
) -> LocalWorker:
    port = free_port()
    command = [sys.executable, "-m", "scalesim.cli", "serve", *serve_args]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    env = dict(os.environ)
    # SGLang's /health runs a one-token generation by default; the router checks every 2 s,
    # which on a busy CPU worker costs real time. Process liveness is what routing needs.
    env.setdefault("SGLANG_ENABLE_HEALTH_ENDPOINT_GENERATION", "false")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    log_path = log_dir / f"worker-{index}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )
    return LocalWorker(index, f"http://127.0.0.1:{port}", process, log_path, gpu)


def wait_workers_healthy(workers: Sequence[LocalWorker], *, timeout_s: float) -> float:
    """Poll every worker's ``/health`` until all answer; returns the seconds it took.

    Raises:
        ServerStartError: a worker exited or was not healthy in time (naming its log).
    """
    started = time.monotonic()
    waiting = list(workers)
    while waiting:
        for worker in list(waiting):
            code = worker.exit_code()
            if code is not None:
                raise ServerStartError(
                    f"worker {worker.index} exited with code {code}; log: {worker.log_path}"
                )
            if is_healthy(worker.url):
                waiting.remove(worker)
        if time.monotonic() - started > timeout_s:
            logs = ", ".join(str(w.log_path) for w in waiting)
            raise ServerStartError(f"workers not healthy after {timeout_s:.0f} s; logs: {logs}")
        if waiting:
            time.sleep(_POLL_INTERVAL_S)
    return time.monotonic() - started


def stop_workers(workers: Sequence[LocalWorker]) -> None:
    """Stop every worker's process group (SIGTERM, then SIGKILL after a grace period)."""
    for worker in workers:
        stop_process_group(worker.process)


def is_healthy(url: str, *, timeout_s: float = 2.0) -> bool:
    """Whether ``url/health`` answers 200 within ``timeout_s`` seconds."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout_s) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False
