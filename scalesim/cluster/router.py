"""sglang-router in front of the workers: its command line, readiness, and worker removal.

Who calls it: ``scalesim/cluster/running.py`` (start, wait, stop) and
``scalesim/cluster/monitor.py`` (drop a dead worker). The router is SGLang's own Rust binary
(``python -m sglang_router.launch_router``, pinned in pyproject.toml); ScaleSim only chooses its
flags. Why these flags:

- affinity = ``--policy manual``: the router keeps each ``X-SMG-Routing-Key``
  (``namespace|agent``, set by ``scalesim.client``) on one worker; a new key goes to a random
  worker (``--assignment-mode random``: balanced in expectation; ``min_group`` and ``min_load``
  count keys *in flight*, so sequential first calls would all land on one worker); a key
  moves only when its worker is unavailable.
- ``--cb-failure-threshold 1`` with retries: the first failed call to a dead worker opens its
  circuit breaker and the router's retry picks another worker, so the call still succeeds
  (with the router's defaults a few calls fail first). ``--cb-timeout-duration-secs`` keeps a
  worker that had one transient error out only briefly.
- A generous health-check timeout: a busy CPU worker answers ``/health`` slowly, and a false
  "unhealthy" would move its agents away from their caches.
- A free loopback port for its Prometheus exporter (its default, 29000, collides between
  clusters) and a short shutdown grace period (its default is 180 s).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from scalesim.server_process import free_port

from .options import Routing

_POLICY_FLAGS: dict[Routing, tuple[str, ...]] = {
    Routing.AFFINITY: ("--policy", "manual", "--assignment-mode", "random"),
    Routing.ROUND_ROBIN: ("--policy", "round_robin"),
    Routing.CACHE_AWARE: ("--policy", "cache_aware"),
}
_RELIABILITY_FLAGS = (
    "--cb-failure-threshold", "1",
    "--cb-timeout-duration-secs", "10",
    "--retry-max-retries", "3",
    "--health-check-interval-secs", "2",
    "--health-check-timeout-secs", "30",
    "--health-failure-threshold", "3",
    "--shutdown-grace-period-secs", "2",
    "--worker-startup-check-interval", "1",
    "--log-level", "warn",
)  # fmt: skip
_HTTP_TIMEOUT_S = 5.0


class RouterError(RuntimeError):
    """The router did not start, or refused a control call."""


@dataclass(frozen=True)
class RouterWorker:
    """One worker as the router lists it (``GET /workers``)."""

    worker_id: str
    url: str
    healthy: bool


def router_command(
    worker_urls: Sequence[str], *, routing: Routing, host: str, port: int
) -> list[str]:
    """The command line that starts sglang-router on ``host:port`` in front of ``worker_urls``."""
    command = [sys.executable, "-m", "sglang_router.launch_router", "--host", host]
    command += ["--port", str(port), "--worker-urls", *worker_urls]
    command += [*_POLICY_FLAGS[routing], *_RELIABILITY_FLAGS]
    command += ["--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port())]
    command += ["--worker-startup-timeout-secs", "600"]
    return command


def list_workers(router_url: str) -> tuple[RouterWorker, ...]:
    """The router's workers.

    Raises:
        RouterError: no answer, or not the router's ``{"workers": [...]}``.
    """
    try:
        with urllib.request.urlopen(f"{router_url}/workers", timeout=_HTTP_TIMEOUT_S) as reply:
            body = json.load(reply)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise RouterError(f"GET {router_url}/workers failed: {err}") from err
    entries = body.get("workers") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise RouterError(f"GET {router_url}/workers is not a worker list: {body!r:.200}")
    return tuple(
        RouterWorker(str(entry["id"]), str(entry["url"]), bool(entry.get("is_healthy")))
        for entry in entries
        if isinstance(entry, dict) and "id" in entry and "url" in entry
    )


def remove_worker(router_url: str, worker_url: str) -> bool:
    """Ask the router to drop ``worker_url`` (its routing keys move to the others).

    Returns False when the router does not list it (already gone).

    Raises:
        RouterError: the router did not accept the removal.
    """
    ids = [w.worker_id for w in list_workers(router_url) if w.url == worker_url]
    for worker_id in ids:
        request = urllib.request.Request(
            f"{router_url}/workers/{quote(worker_id, safe='')}", method="DELETE"
        )
        try:
            with urllib.request.urlopen(request, timeout=_HTTP_TIMEOUT_S) as reply:
                reply.read()
        except (urllib.error.URLError, OSError) as err:
            raise RouterError(f"removing {worker_url} from the router failed: {err}") from err
    return bool(ids)


def wait_router_ready(
    router_url: str, *, expected: Sequence[str], timeout_s: float, alive: Callable[[], bool]
) -> None:
    """Poll until the router lists every expected worker as healthy.

    Args:
        router_url: the router's root URL.
        expected: worker URLs that must be registered and healthy.
        timeout_s: seconds to wait.
        alive: a callable returning False once the router process has exited.

    Raises:
        RouterError: the router exited or was not ready in time.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive():
            raise RouterError("sglang-router exited during startup")
        try:
            healthy = {w.url for w in list_workers(router_url) if w.healthy}
        except RouterError:
            healthy = set()
        if set(expected) <= healthy:
            return
        time.sleep(0.5)
    raise RouterError(f"sglang-router at {router_url} not ready after {timeout_s:.0f} s")
