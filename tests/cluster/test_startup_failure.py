"""A cluster whose worker cannot start: a clear error naming the log, and no process left.

Runs the real ``scalesim serve`` with a model path that does not exist: it exits after its
argument checks, without loading anything, so this takes seconds, not a model load.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from scalesim.cluster import ClusterOptions, running_cluster
from scalesim.server_process import ServerStartError


def test_a_worker_that_exits_stops_the_cluster_start(tmp_path: Path) -> None:
    options = ClusterOptions(workers=2, log_dir=tmp_path, startup_timeout_s=300)
    args = ["--model-path", str(tmp_path / "no-such-model"), "--device", "cpu"]
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    with (
        pytest.raises(ServerStartError, match=r"worker \d exited with code") as failure,
        running_cluster(options, args, report=lambda event: None),
    ):
        pytest.fail("the cluster must not start")
    assert "worker-" in str(failure.value) and ".log" in str(failure.value)
    assert not (tmp_path / "router.log").exists()  # the router never started
    left = {child.pid for child in psutil.Process().children(recursive=True)} - before
    assert not left  # the worker still starting was stopped too
