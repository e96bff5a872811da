"""``scalesim cluster`` options: how many workers, where, and how the router spreads agents.

Who calls it: ``scalesim/cluster/command.py`` (the command line) and the live bench
(``--workers``). Everything this parser does not know is a ``scalesim serve`` argument, passed
unchanged to every local worker. ``--host``/``--port`` are the router's: each local worker
binds loopback on a free port of its own.
"""

from __future__ import annotations

import argparse
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class Routing(enum.Enum):
    """How sglang-router picks a worker for an LLM call."""

    #: The router's ``manual`` policy on the ``X-SMG-Routing-Key`` header the ScaleSim client
    #: sets to ``namespace|agent``: a key stays on its worker; a new key goes to a random
    #: worker; a key moves only when its worker becomes unavailable.
    AFFINITY = "affinity"
    #: The router's ``round_robin``: the baseline, agents spread over every worker.
    ROUND_ROBIN = "round_robin"
    #: The router's default ``cache_aware`` (approximate prefix tree per worker).
    CACHE_AWARE = "cache_aware"


class ClusterArgumentError(ValueError):
    """A ``scalesim cluster`` command line that cannot run (the message says why)."""


@dataclass(frozen=True)
class ClusterOptions:
    """One cluster's settings, validated in :meth:`__post_init__`.

    Attributes:
        workers: local ``scalesim serve`` workers to start (0 with ``worker_urls``).
        worker_urls: servers started elsewhere to front instead (no local workers).
        routing: the router's policy for LLM calls.
        host: the router's bind address.
        port: the router's port; None: a free one.
        log_dir: where the workers' and the router's logs go.
        startup_timeout_s: seconds to wait for every worker's ``/health``, then the router.
    """

    workers: int
    worker_urls: tuple[str, ...] = ()
    routing: Routing = Routing.AFFINITY
    host: str = "127.0.0.1"
    port: int | None = None
    log_dir: Path = Path("scalesim-cluster-logs")
    startup_timeout_s: float = 900.0

    def __post_init__(self) -> None:
        if self.worker_urls and self.workers:
            raise ClusterArgumentError("give either --workers N or --worker-urls, not both")
        if not self.worker_urls and self.workers < 1:
            raise ClusterArgumentError(f"--workers must be >= 1, got {self.workers}")
        bad = [url for url in self.worker_urls if not url.startswith(("http://", "https://"))]
        if bad:
            raise ClusterArgumentError(f"--worker-urls must be http(s) URLs, got {bad}")
        if self.port is not None and not 0 < self.port < 65536:
            raise ClusterArgumentError(f"--port must be 1-65535, got {self.port}")
        if not self.startup_timeout_s > 0:
            raise ClusterArgumentError("--startup-timeout-s must be > 0")

    @property
    def n_workers(self) -> int:
        """Workers behind the router, local or not."""
        return len(self.worker_urls) or self.workers


def build_parser() -> argparse.ArgumentParser:
    """The parser of the cluster's own options (the rest goes to every worker)."""
    parser = argparse.ArgumentParser(
        prog="scalesim cluster",
        allow_abbrev=False,
        description="Start N `scalesim serve` workers behind sglang-router, agents kept on one "
        "worker each; prints the router's URL and stops everything on exit or signal.",
        epilog="Every other argument goes to each worker's `scalesim serve` (model, ScaleSim "
        "and SGLang options). On a CUDA machine worker i runs on GPU i.",
    )
    parser.add_argument("--workers", type=int, default=0, help="local workers to start")
    parser.add_argument(
        "--worker-urls", nargs="+", default=[], metavar="URL", help="front servers run elsewhere"
    )
    parser.add_argument(
        "--routing",
        choices=[r.value for r in Routing],
        default=Routing.AFFINITY.value,
        help="affinity (default): each agent stays on one worker (the router's manual policy "
        "on the X-SMG-Routing-Key header scalesim.client sets); or the router's own policies",
    )
    parser.add_argument("--host", default="127.0.0.1", help="the router's bind address")
    parser.add_argument("--port", type=int, help="the router's port (default: a free one)")
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=Path("scalesim-cluster-logs"),
        help="where worker-<i>.log and router.log go",
    )
    parser.add_argument(
        "--startup-timeout-s", type=float, default=900.0, help="seconds to wait for the workers"
    )
    return parser


def parse_cluster_args(argv: Sequence[str]) -> tuple[ClusterOptions, tuple[str, ...]]:
    """The cluster's options and the ``scalesim serve`` arguments of every worker.

    Raises:
        ClusterArgumentError: bad values, or serve arguments with ``--worker-urls``.
    """
    known, serve_args = build_parser().parse_known_args(list(argv))
    if known.worker_urls and serve_args:
        raise ClusterArgumentError(
            f"with --worker-urls no worker is started here; unexpected arguments {serve_args}"
        )
    options = ClusterOptions(
        workers=known.workers,
        worker_urls=tuple(url.rstrip("/") for url in known.worker_urls),
        routing=Routing(known.routing),
        host=known.host,
        port=known.port,
        log_dir=known.log_dir,
        startup_timeout_s=known.startup_timeout_s,
    )
    return options, tuple(serve_args)
