"""Sampling during the soak: the server tree's RSS/PSS and the runtime's tables over time.

Called by ``load.drive``: :func:`sample_until` every ``sample_s`` while the load runs, then
:func:`take_sample` once after every namespace is deleted. :class:`Sample` is what ``document``
and ``report`` read.
Invariants: a sample is None only when ``GET /scalesim/v1/state`` failed (counted as a
``state_errors``); memory is summed over the server's whole process tree, found again at every
sample (0 processes: the server is gone, and sampling stops with the reason).
"""

from __future__ import annotations

import itertools
import time
from typing import NamedTuple

import psutil

from scalesim.client import ScaleSim, ScaleSimError

from .params import ERROR_KINDS, MIB, SoakParams
from .tally import Tally


class Sample(NamedTuple):
    """One instant: the server tree's memory, the runtime's tables, the client's totals."""

    t_s: float
    rss_bytes: int
    pss_bytes: int
    processes: int
    namespaces: int
    agents: int
    path_owners: int
    owned_nodes: int
    device_tokens: int
    host_tokens: int
    distance_updates: int
    rejected_updates: int
    requests: int
    updates: int
    deletes: int
    errors: int


class ServerTree:
    """The server's processes: this process's child serving ``port`` and its descendants
    (SGLang's HTTP process, scheduler and detokenizer), found again at every sample."""

    def __init__(self, port: int) -> None:
        children = psutil.Process().children()
        self.root = next((p for p in children if _serves(p, port)), None)

    def memory(self) -> tuple[int, int, int]:
        """RSS and PSS summed over the tree, in bytes (PSS splits shared pages between the
        processes that map them, so it does not count torch's libraries once per process),
        and the number of processes."""
        if self.root is None:
            return 0, 0, 0
        rss_bytes = pss_bytes = processes = 0
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return 0, 0, 0
        for process in tree:
            try:
                info = process.memory_full_info()
            except psutil.Error:
                continue
            rss_bytes += info.rss
            pss_bytes += getattr(info, "pss", info.rss)
            processes += 1
        return rss_bytes, pss_bytes, processes


def _serves(process: psutil.Process, port: int) -> bool:
    try:
        argv = process.cmdline()
    except psutil.Error:
        return False
    return any(a == "--port" and b == str(port) for a, b in itertools.pairwise(argv))


def take_sample(t_s: float, tree: ServerTree, admin: ScaleSim, tally: Tally) -> Sample | None:
    """Read the server's memory and ``GET /scalesim/v1/state`` (None: the state call failed)."""
    rss_bytes, pss_bytes, processes = tree.memory()
    try:
        state = admin.state()
    except ScaleSimError as err:
        tally.error("state_errors", f"server-wide: {err!r}")
        return None
    counts, device, host = tally.snapshot(), state.device_tokens, state.host_tokens
    return Sample(
        round(t_s, 2),
        rss_bytes,
        pss_bytes,
        processes,
        len(state.namespaces),
        state.agents,
        state.path_owners,
        state.owned_nodes,
        device.near + device.far + device.unknown,
        host.near + host.far + host.unknown,
        state.counters.get("distance_updates", 0),
        state.counters.get("rejected_updates", 0),
        counts.get("requests", 0),
        counts.get("updates", 0),
        counts.get("deletes", 0),
        sum(counts.get(kind, 0) for kind in ERROR_KINDS),
    )


def sample_until(
    started: float, params: SoakParams, *, tree: ServerTree, admin: ScaleSim, tally: Tally
) -> tuple[list[Sample], str | None]:
    """Samples every ``sample_s`` until ``duration_s`` (a last one at the end); stops early,
    with the reason, when the server's processes are gone."""
    samples: list[Sample] = []
    deadline = started + params.duration_s
    for index in itertools.count(1):
        now = time.monotonic()
        sample = take_sample(now - started, tree, admin, tally)
        if sample is not None:
            samples.append(sample)
            _print_sample(sample)
        if (tree.memory()[2] if sample is None else sample.processes) == 0:
            return samples, f"the server's processes exited after {now - started:.0f} s"
        if now >= deadline:
            break
        time.sleep(max(0.0, min(started + index * params.sample_s, deadline) - time.monotonic()))
    return samples, None


def _print_sample(sample: Sample) -> None:
    print(
        f"[soak] {sample.t_s:6.0f} s: rss {sample.rss_bytes / MIB:,.0f} MiB, "
        f"{sample.requests} requests, {sample.updates} updates, {sample.deletes} deletes, "
        f"{sample.errors} errors; namespaces {sample.namespaces}, agents {sample.agents}, "
        f"owned nodes {sample.owned_nodes}, device tokens {sample.device_tokens}",
        flush=True,
    )
