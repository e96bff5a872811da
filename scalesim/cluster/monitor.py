"""Watches a cluster's workers; reports a worker that died and takes it out of the router.

Who calls it: ``scalesim/cluster/running.py`` starts one :class:`WorkerMonitor` thread per
cluster. A local worker whose process exited is reported at once and removed from the router,
so its routing keys (agents) move to the remaining workers on their next call: their cached
prefixes and adapters are lost with the worker, their requests are not. A worker that stops
answering ``/health`` (local or remote) is reported once; the router's own health check takes
it out of rotation. Reports go to one callback (the command prints them; tests collect them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .router import RouterError, remove_worker
from .workers import LocalWorker, is_healthy

#: Consecutive failed health checks before a worker is reported as not answering.
UNHEALTHY_AFTER = 3


@dataclass(frozen=True)
class WorkerEvent:
    """One thing that happened to a worker (``kind``: exited | unresponsive | removed)."""

    url: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"[cluster] worker {self.url} {self.kind}: {self.detail}"


class WorkerMonitor:
    """A daemon thread that checks every worker each ``interval_s`` seconds until stopped.

    Args:
        router_url: the router to remove dead local workers from.
        local: workers whose processes this cluster started.
        remote: worker URLs started elsewhere (health only).
        report: receives each :class:`WorkerEvent` as it happens.
        interval_s: seconds between checks.
    """

    def __init__(
        self,
        router_url: str,
        *,
        local: Sequence[LocalWorker],
        remote: Sequence[str],
        report: Callable[[WorkerEvent], None],
        interval_s: float = 1.0,
    ) -> None:
        self.router_url, self.local, self.remote = router_url, tuple(local), tuple(remote)
        self.report, self.interval_s = report, interval_s
        self.events: list[WorkerEvent] = []
        self._gone: set[str] = set()
        self._failures: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scalesim-cluster-monitor")
        self._thread.daemon = True

    def start(self) -> None:
        """Start checking."""
        self._thread.start()

    def stop(self) -> None:
        """Stop checking (waits for the current check to finish)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def alive_urls(self) -> tuple[str, ...]:
        """Workers not reported dead."""
        urls = [w.url for w in self.local] + list(self.remote)
        return tuple(url for url in urls if url not in self._gone)

    def check_once(self) -> None:
        """One round: exited local workers, then health of the rest."""
        for worker in self.local:
            code = worker.exit_code()
            if code is not None and worker.url not in self._gone:
                self._gone.add(worker.url)
                self._emit(WorkerEvent(worker.url, "exited", f"code {code}; log {worker.log_path}"))
                self._remove(worker.url)
        for url in self.alive_urls():
            self._check_health(url)

    def _check_health(self, url: str) -> None:
        failures = 0 if is_healthy(url) else self._failures.get(url, 0) + 1
        self._failures[url] = failures
        if failures == UNHEALTHY_AFTER:
            detail = f"no /health answer {failures} times in a row; the router stops routing to it"
            self._emit(WorkerEvent(url, "unresponsive", detail))

    def _remove(self, url: str) -> None:
        try:
            removed = remove_worker(self.router_url, url)
        except RouterError as err:
            self._emit(WorkerEvent(url, "removed", f"failed: {err}"))
            return
        detail = (
            "its agents move to the other workers (their cached state is lost, not their calls)"
        )
        self._emit(WorkerEvent(url, "removed", detail if removed else "already gone"))

    def _emit(self, event: WorkerEvent) -> None:
        self.events.append(event)
        self.report(event)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.check_once()
