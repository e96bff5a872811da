"""Starting the real server for an e2e module: CPU mode without CUDA, the log on failure."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from scalesim.server_process import RunningServer, ServerStartError, running_server


@contextmanager
def serving(args: list[str], *, log_path: Path) -> Iterator[RunningServer]:
    """``scalesim serve ARGS`` (plus ``--device cpu`` without CUDA) until the block ends.

    A server that does not start fails the test with the tail of its log.
    """
    device = [] if torch.cuda.is_available() else ["--device", "cpu"]
    try:
        with running_server([*args, *device], log_path=log_path) as running:
            yield running
    except ServerStartError as err:
        log = log_path.read_text(encoding="utf-8", errors="replace")[-20_000:]
        pytest.fail(f"{err}\n{log}")
