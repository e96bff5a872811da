"""One soak run against a started server: the load threads, the sampling, the drained state.

Called by ``command.run`` once the server is healthy; returns a frozen :class:`Load` that
``document`` turns into the JSON result.
Invariants: the stop event is always set and every thread joined before :func:`drive` returns
(even when sampling raises); a thread's unexpected exception is counted as a ``crashes`` error;
the drained sample is taken after every thread has ended, so every namespace has been deleted.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from scalesim.client import ScaleSim
from scalesim.server_process import RunningServer

from .params import SoakParams
from .samples import Sample, ServerTree, sample_until, take_sample
from .simulation import Simulation, chat_worker
from .tally import Tally


@dataclasses.dataclass(frozen=True)
class Load:
    """What one run measured (the samples during the load, and one after every delete)."""

    samples: tuple[Sample, ...]
    drained: Sample | None
    load_s: float
    tally: Tally
    aborted: str | None


def drive(server: RunningServer, params: SoakParams) -> Load:
    """Run the simulations and the chat threads for ``duration_s``, sampling as they go."""
    tally, stop = Tally(), threading.Event()
    sims = [Simulation(i, server.base_url, params, tally) for i in range(params.simulations)]
    jobs: list[Callable[[], None]] = [functools.partial(sim.run, stop) for sim in sims]
    jobs += [
        functools.partial(chat_worker, worker, sims, tally=tally, stop=stop)
        for worker in range(params.chat_threads)
    ]
    threads = [threading.Thread(target=_guarded(job, tally), daemon=True) for job in jobs]
    tree = ServerTree(urlsplit(server.base_url).port or 0)
    with ScaleSim(server.base_url) as admin:
        started = time.monotonic()
        try:
            for thread in threads:
                thread.start()
            samples, aborted = sample_until(started, params, tree=tree, admin=admin, tally=tally)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        load_s = time.monotonic() - started
        drained = take_sample(load_s, tree, admin, tally)
    return Load(tuple(samples), drained, load_s, tally, aborted)


def _guarded(job: Callable[[], None], tally: Tally) -> Callable[[], None]:
    """A thread body whose unexpected exception is counted as a crash (then raised, so
    threading prints it), instead of silently thinning the load."""

    def body() -> None:
        try:
            job()
        except Exception as err:
            tally.error("crashes", repr(err))
            raise

    return body
