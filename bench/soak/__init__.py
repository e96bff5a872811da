"""Load and soak: N simulations at once against one real ``scalesim serve``, for minutes.

One server (the tiny model, ``--radix-eviction-policy scalesim``, a device KV pool smaller than
the agents' prefixes so eviction runs all along; CPU development mode without a GPU) on a free
loopback port, started by :func:`scalesim.server_process.running_server` and always stopped.
Against it, through :class:`scalesim.client.ScaleSim`:

- one ticker per simulation: ``POST /scalesim/v1/distances`` at ``tick_hz`` with every agent's
  next call (per tick one agent withdrawn, one with no call expected), the clock counting up and
  SDK-allocated, increasing versions. After ``episode_ticks`` ticks the simulation ends: its
  chats in flight drain, ``GET /scalesim/v1/state?namespace=NS`` must show the version of the
  last tick the server accepted (else a *lost update*), then ``DELETE
  /scalesim/v1/namespaces/NS``; the next episode is a fresh namespace.
- ``chat_threads`` threads chatting as the simulations' agents, ``clock`` (the simulation's
  last accepted clock) and ``next_call`` in ``extra_body``.
- every ``sample_s``: the RSS and PSS of the server's whole process tree (psutil) and the
  runtime's tables from ``GET /scalesim/v1/state`` (namespaces, agents, path owners, owned
  nodes, tokens held).

Growth is reported from the first sample at 25% of the run (after warm-up) to the last one.
After the load every namespace is deleted and one more sample shows what stays behind.
A benchmark: it prints and writes results, never asserts (``tests/bench/test_soak.py`` does).

Modules: ``params`` (the load, validated), ``tally`` (counters shared by the threads),
``simulation`` (tickers, episodes, chats), ``samples`` (memory and state over time), ``load``
(one run: threads, sampling, drained state), ``document`` (the JSON), ``report`` (Markdown and
PNG), ``command`` (the command line). This package re-exports what ``bench/cli.py`` and the
tests call; importing it starts nothing (the server, threads and model build are all in
:func:`run`).

Run: ``python -m scalesim.bench.soak [--duration-s 600 --simulations 4 ...]`` or ``scalesim
bench soak ...``. Writes ``bench/results/soak-<machine>.json``, ``.md`` and ``.png`` (or under
``--out-dir``); the server's log goes to ``--log-path``.
"""

from .command import add_soak_arguments, main, run, run_from_args
from .load import Load, drive
from .params import SoakParams
from .samples import Sample
from .tally import Tally

__all__ = [
    "Load",
    "Sample",
    "SoakParams",
    "Tally",
    "add_soak_arguments",
    "drive",
    "main",
    "run",
    "run_from_args",
]
