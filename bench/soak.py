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

Run: ``python -m scalesim.bench.soak [--duration-s 600 --simulations 4 ...]`` or ``scalesim
bench soak ...``. Writes ``bench/results/soak-<machine>.json``, ``.md`` and ``.png`` (or under
``--out-dir``); the server's log goes to ``--log-path``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import random
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import openai
import psutil
from openai.types.chat import ChatCompletionMessageParam

from scalesim.client import Delivery, ScaleSim, ScaleSimError, ScaleSimHTTPError
from scalesim.demo import default_home, persona
from scalesim.server_process import RunningServer, ServerStartError, running_server
from scalesim.tiny_model import ensure_tiny_model

from .live.document import machine
from .live.report import percentile

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SERVED_MODEL_NAME = "scalesim-soak"
#: Growth is measured from the first sample at this fraction of the run (after warm-up).
WARM_FRACTION = 0.25
#: Error kinds counted in ``totals.errors`` (lost updates are counted on their own).
ERROR_KINDS = ("request_errors", "update_errors", "delete_errors", "state_errors", "crashes")
_CHAT_TIMEOUT_S = 60.0
_MAX_EXAMPLES = 20
_MIB = 1 << 20


@dataclasses.dataclass(frozen=True)
class SoakParams:
    """The load (times in seconds, sizes in tokens), validated in one place."""

    duration_s: float = 600.0
    simulations: int = 8
    agents: int = 16
    chat_threads: int = 4
    tick_hz: float = 0.0
    episode_ticks: int = 100
    max_tokens: int = 4
    persona_words: int = 40
    pool_tokens: int = 4096
    sample_s: float = 5.0

    def __post_init__(self) -> None:
        counts = (self.simulations, self.agents, self.chat_threads, self.episode_ticks)
        if min(*counts, self.max_tokens, self.persona_words) < 1 or self.pool_tokens < 1024:
            raise ValueError("counts must be >= 1 and pool_tokens >= 1024")
        if not (self.duration_s > 0 and self.sample_s > 0 and self.tick_hz >= 0):
            raise ValueError("duration_s and sample_s must be > 0, tick_hz >= 0")


#: ``--help`` of each :class:`SoakParams` field.
PARAM_HELP = {
    "duration_s": "seconds of load after the server is healthy",
    "simulations": "simulations at once, each with its own ticker thread and namespaces",
    "agents": "agents per simulation",
    "chat_threads": "threads sending chat completions",
    "tick_hz": "distance updates per second per simulation (0: as fast as answered)",
    "episode_ticks": "updates of one namespace before it is checked and deleted",
    "max_tokens": "output tokens per chat",
    "persona_words": "words of each agent's system prompt",
    "pool_tokens": "device KV pool in tokens (--max-total-tokens)",
    "sample_s": "seconds between two samples of memory and state",
}


class Tally:
    """Counts, latencies and error examples, shared by every thread under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.latency_s: dict[str, list[float]] = {"chat": [], "tick": []}
        self.examples: list[str] = []

    def add(self, **counts: int) -> None:
        with self._lock:
            self.counts.update(counts)

    def timed(self, kind: str, seconds: float) -> None:
        with self._lock:
            self.latency_s[kind].append(seconds)

    def error(self, kind: str, err: object) -> None:
        """Count one ``kind``; keep the first few messages to read after the run."""
        with self._lock:
            self.counts[kind] += 1
            if len(self.examples) < _MAX_EXAMPLES:
                self.examples.append(f"{kind}: {err}"[:400])

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


@dataclasses.dataclass
class Episode:
    """One run of a simulation in its own namespace (clock and version: last accepted tick)."""

    namespace: str
    client: ScaleSim
    clock: int = 0
    version: int | None = None


def tick_body(agents: int, clock: int) -> tuple[dict[str, float | None], list[str]]:
    """Every agent's next call ``1 + (agent + clock) % 4`` steps ahead, but for one withdrawn
    (``unknown``) and one with no call expected (null), rotating with the clock."""
    withdrawn, silent = clock % agents, (clock + 1) % agents
    next_call: dict[str, float | None] = {
        f"a{agent}": None if agent == silent else float(clock + 1 + (agent + clock) % 4)
        for agent in range(agents)
        if agent != withdrawn
    }
    return next_call, [f"a{withdrawn}"]


class Simulation:
    """One simulation: its episodes one after another, ticked from one thread, and the chats
    that may run in the current one (they drain before its namespace is checked and dropped,
    so no chat can recreate a deleted namespace)."""

    def __init__(self, index: int, url: str, params: SoakParams, tally: Tally) -> None:
        self.index, self.url, self.params, self.tally = index, url, params, tally
        self._cond = threading.Condition()
        self._episode: Episode | None = None
        self._in_flight = 0
        self._opened = 0

    def run(self, stop: threading.Event) -> None:
        """Episodes until ``stop``; the last one is checked and dropped too."""
        while not stop.is_set():
            episode = self._open()
            try:
                self._tick_through(episode, stop)
            finally:
                self._close(episode)

    def begin_chat(self) -> Episode | None:
        """The episode a chat may run in now (None between two), counted in flight."""
        with self._cond:
            if self._episode is not None:
                self._in_flight += 1
            return self._episode

    def end_chat(self) -> None:
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def _open(self) -> Episode:
        namespace = f"soak-s{self.index}-e{self._opened}"
        self._opened += 1
        client = ScaleSim(self.url, namespace=namespace, model=SERVED_MODEL_NAME)
        episode = Episode(namespace, client)
        with self._cond:
            self._episode = episode
        return episode

    def _tick_through(self, episode: Episode, stop: threading.Event) -> None:
        """``episode_ticks`` ticks paced at ``tick_hz`` (never in bursts to catch up)."""
        interval_s = 1.0 / self.params.tick_hz if self.params.tick_hz > 0 else 0.0
        next_at = time.monotonic()
        for clock in range(self.params.episode_ticks):
            if clock > 0 and stop.wait(max(0.0, next_at - time.monotonic())):
                return
            next_at = max(next_at, time.monotonic()) + interval_s
            self._tick(episode, clock)

    def _tick(self, episode: Episode, clock: int) -> None:
        next_call, unknown = tick_body(self.params.agents, clock)
        started = time.monotonic()
        try:
            reply = episode.client.tick(clock, next_call, unknown=unknown)
        except ScaleSimError as err:
            self.tally.error("update_errors", f"{episode.namespace}@{clock}: {err!r}")
            return
        self.tally.timed("tick", time.monotonic() - started)
        again = int(reply.delivery is Delivery.ALREADY_APPLIED)
        self.tally.add(updates=1, applied_entries=reply.applied or 0, already_applied=again)
        with self._cond:
            episode.clock, episode.version = clock, reply.version

    def _close(self, episode: Episode) -> None:
        """Drain the episode's chats, check its last version, delete its namespace."""
        with self._cond:
            self._episode = None
            self._cond.wait_for(lambda: self._in_flight == 0)
        try:
            self._check(episode)
            episode.client.drop_namespace()
            self.tally.add(deletes=1)
        except ScaleSimError as err:
            self.tally.error("delete_errors", f"{episode.namespace}: {err!r}")
        finally:
            episode.client.close()

    def _check(self, episode: Episode) -> None:
        """No lost update: the server holds the namespace at the last version it accepted."""
        try:
            info = episode.client.state(episode.namespace).find(episode.namespace)
        except ScaleSimHTTPError as err:
            if err.status != 404:
                self.tally.error("state_errors", f"{episode.namespace}: {err!r}")
                return
            info = None
        self.tally.add(namespaces_checked=1)
        held = None if info is None else info.version
        if held != episode.version:
            message = f"{episode.namespace}: server {held}, last accepted {episode.version}"
            self.tally.error("lost_updates", message)


def chat(episode: Episode, agent: int, params: SoakParams, tally: Tally) -> None:
    """One chat as ``agent`` of the episode's simulation at its last accepted clock."""
    clock = episode.clock
    messages: list[ChatCompletionMessageParam] = [
        {
            "role": "system",
            "content": f"{episode.namespace}: {persona(agent, n_words=params.persona_words)}",
        },
        {"role": "user", "content": f"Step {clock}: what do you do next?"},
    ]
    started = time.monotonic()
    try:
        reply = episode.client.chat(
            f"a{agent}",
            messages,
            clock=clock,
            next_call=clock + 1 + agent % 4,
            max_tokens=params.max_tokens,
            temperature=0.0,
            timeout=_CHAT_TIMEOUT_S,
        )
    except (openai.APIError, ScaleSimError) as err:
        tally.error("request_errors", f"{episode.namespace}/a{agent}: {err!r}")
        return
    tally.timed("chat", time.monotonic() - started)
    usage = reply.usage
    details = usage.prompt_tokens_details if usage is not None else None
    cached = (details.cached_tokens or 0) if details is not None else 0
    tally.add(requests=1, prompt_tokens=usage.prompt_tokens if usage else 0, cached_tokens=cached)


def chat_worker(
    worker: int, simulations: Sequence[Simulation], *, tally: Tally, stop: threading.Event
) -> None:
    """Chats as random agents of each simulation in turn until ``stop`` is set."""
    rng = random.Random(worker)
    params = simulations[0].params
    for turn in itertools.count(worker):
        if stop.is_set():
            return
        simulation = simulations[turn % len(simulations)]
        episode = simulation.begin_chat()
        if episode is None:  # between two episodes: a short pause, then the next simulation
            stop.wait(0.005)
            continue
        try:
            chat(episode, rng.randrange(params.agents), params, tally)
        finally:
            simulation.end_chat()


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
            samples, aborted = _sample_until(started, params, tree=tree, admin=admin, tally=tally)
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


def _sample_until(
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
        f"[soak] {sample.t_s:6.0f} s: rss {sample.rss_bytes / _MIB:,.0f} MiB, "
        f"{sample.requests} requests, {sample.updates} updates, {sample.deletes} deletes, "
        f"{sample.errors} errors; namespaces {sample.namespaces}, agents {sample.agents}, "
        f"owned nodes {sample.owned_nodes}, device tokens {sample.device_tokens}",
        flush=True,
    )


#: Sample fields whose growth after warm-up is reported.
GROWTH_FIELDS = (
    *("rss_bytes", "pss_bytes", "namespaces", "agents"),
    *("path_owners", "owned_nodes", "device_tokens", "host_tokens"),
)


def growth(samples: Sequence[Sample], duration_s: float) -> dict[str, Any]:
    """Each of :data:`GROWTH_FIELDS` at the first sample at 25% of the run, at the end, its
    maximum in between and the growth; and the RSS trend after warm-up (least squares)."""
    warm_at = next((i for i, s in enumerate(samples) if s.t_s >= WARM_FRACTION * duration_s), 0)
    warm, end, after = samples[warm_at], samples[-1], samples[warm_at:]
    fields: dict[str, Any] = {"warm_t_s": warm.t_s, "end_t_s": end.t_s}
    for name in GROWTH_FIELDS:
        start_value, end_value = getattr(warm, name), getattr(end, name)
        fields[name] = {
            "warm": start_value,
            "end": end_value,
            "max_after_warm": max(getattr(s, name) for s in after),
            "growth": end_value - start_value,
            "growth_pct": round(100 * (end_value - start_value) / start_value, 2)
            if start_value
            else None,
        }
    times = [s.t_s for s in after]
    if len(set(times)) >= 2:
        fit = statistics.linear_regression(times, [s.rss_bytes / _MIB for s in after])
        fields["rss_slope_mib_per_min"] = round(60 * fit.slope, 3)
    return fields


def document(params: SoakParams, load: Load, *, startup_s: float, wall_s: float) -> dict[str, Any]:
    """The JSON result: totals, rates, latencies, growth, the drained state and every sample."""
    totals = _totals(load)
    latency = {
        kind: {f"p{q}": round(percentile(sorted(values), q), 4) for q in (50, 99)}
        for kind, values in load.tally.latency_s.items()
    }
    rates = {key: round(totals[key] / load.load_s, 2) for key in ("requests", "updates", "deletes")}
    return {
        "machine": machine(),
        "source": source_tree(),
        "params": dataclasses.asdict(params),
        "serve_flags": serve_flags(params),
        "startup_s": round(startup_s, 1),
        "load_s": round(load.load_s, 1),
        "wall_s": round(wall_s, 1),
        "aborted": load.aborted,
        "totals": totals,
        "rates_per_s": rates,
        "latency_s": latency,
        "growth": growth(load.samples, params.duration_s) if load.samples else None,
        "drained": load.drained._asdict() if load.drained else None,
        "examples": load.tally.examples,
        "samples": [sample._asdict() for sample in load.samples],
    }


def _totals(load: Load) -> dict[str, int]:
    """The client's counts, and the server's own distance and rejection counters."""
    counts = load.tally.snapshot()
    names = [*("requests", "updates", "deletes"), *ERROR_KINDS, "lost_updates"]
    names += ["namespaces_checked", "already_applied", "applied_entries"]
    names += ["prompt_tokens", "cached_tokens"]
    totals = {name: counts.get(name, 0) for name in names}
    totals["errors"] = sum(counts.get(kind, 0) for kind in ERROR_KINDS)
    last = load.drained or (load.samples[-1] if load.samples else None)
    if last is not None:
        totals["server_distance_updates"] = last.distance_updates
        # every successful chat applies one entry; a reply's ``applied`` also counts the
        # withdrawn agents (``unknown``), which the server's counter leaves out
        totals["client_distance_updates"] = totals["applied_entries"] + totals["requests"]
        totals["server_rejected_updates"] = last.rejected_updates
    return totals


def source_tree() -> dict[str, Any] | None:
    """The commit the server's code came from, and its files changed since (None: no git)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = _git(root, "rev-parse", "HEAD").strip()
        dirty = _git(root, "status", "--porcelain", "--", "scalesim", "patches", "kernels")
    except (OSError, subprocess.CalledProcessError):
        return None
    return {"commit": commit, "changed": [line[3:] for line in dirty.splitlines()]}


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True)
    return done.stdout.decode()


def serve_flags(params: SoakParams) -> list[str]:
    """``scalesim serve`` flags besides the model (``--device cpu`` without CUDA)."""
    import torch

    flags = ["--radix-eviction-policy", "scalesim", "--max-total-tokens", str(params.pool_tokens)]
    return flags if torch.cuda.is_available() else [*flags, "--device", "cpu"]


def run(params: SoakParams, *, log_path: Path) -> dict[str, Any]:
    """Build (once) the tiny model, serve it, drive the load, stop the server; the JSON."""
    started = time.monotonic()
    model = ensure_tiny_model(default_home() / "tiny-model-0-loras", n_loras=0)
    args = ["--model-path", str(model.path), "--served-model-name", SERVED_MODEL_NAME]
    print(f"[soak] starting the server (log: {log_path})", flush=True)
    with running_server([*args, *serve_flags(params)], log_path=log_path) as server:
        print(f"[soak] healthy after {server.startup_s:.1f} s; {params}", flush=True)
        load = drive(server, params)
    wall_s = time.monotonic() - started
    return document(params, load, startup_s=server.startup_s, wall_s=wall_s)


def render(result: dict[str, Any]) -> str:
    """The Markdown report (also printed): totals, then growth after warm-up."""
    params, totals, latency = result["params"], result["totals"], result["latency_s"]
    rates = result["rates_per_s"]

    def server(name: str) -> str:
        return f"{totals.get('server_' + name, 0):,}"

    lines = [
        f"# Soak: {params['simulations']} simulations against one `scalesim serve` for "
        f"{params['duration_s']:g} s ({result['machine']['name']})",
        "",
        f"Params: `{json.dumps(params)}`; server flags `{' '.join(result['serve_flags'])}`. "
        f"Server healthy after {result['startup_s']} s; load {result['load_s']} s; wall "
        f"{result['wall_s']} s; aborted: {result['aborted'] or 'no'}.",
        "",
        "| total | value |",
        "|---|---:|",
        f"| chat requests | {totals['requests']:,} ({rates['requests']}/s) |",
        f"| distance updates | {totals['updates']:,} ({rates['updates']}/s) |",
        f"| namespaces deleted | {totals['deletes']:,} |",
        f"| errors ({', '.join(ERROR_KINDS)}) | {totals['errors']} |",
        f"| lost updates / namespaces checked | {totals['lost_updates']} / "
        f"{totals['namespaces_checked']:,} |",
        f"| chat latency p50 / p99 (s) | {latency['chat']['p50']} / {latency['chat']['p99']} |",
        f"| update latency p50 / p99 (s) | {latency['tick']['p50']} / {latency['tick']['p99']} |",
        f"| cached / prompt tokens | {totals['cached_tokens']:,} / {totals['prompt_tokens']:,} |",
        f"| server's distance_updates / the client's count | {server('distance_updates')} / "
        f"{totals.get('client_distance_updates', 0):,} |",
        f"| server's rejected_updates | {server('rejected_updates')} |",
        "",
        "Lost update: a namespace whose `GET /scalesim/v1/state` version, read after its chats "
        "drained and before its `DELETE`, is not the version of the last update the server "
        "accepted. The client's count of distance entries adds each update's `applied` (which "
        "also counts its withdrawn agent) and one per chat; the server's `distance_updates` "
        "leaves withdrawals out, so the two differ by about one per update.",
        f"Server code: commit {_source(result['source'])}.",
    ]
    return "\n".join([*lines, *_growth_lines(result)]) + "\n"


def _source(source: dict[str, Any] | None) -> str:
    if source is None:
        return "unknown"
    changed = ", ".join(source["changed"]) or "none"
    return f"`{source['commit'][:12]}`, files changed since: {changed}"


def _growth_lines(result: dict[str, Any]) -> list[str]:
    grown, drained = result["growth"], result["drained"]
    if grown is None:
        return ["", "No sample was taken."]
    lines = [
        "",
        f"Growth from the first sample at {WARM_FRACTION:.0%} of the run (t = {grown['warm_t_s']}"
        f" s) to the last (t = {grown['end_t_s']} s); RSS and PSS over the server's process "
        f"tree in MiB; RSS trend after warm-up {grown.get('rss_slope_mib_per_min')} MiB/min.",
        "",
        "| metric | at 25% | end | max after 25% | growth |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in GROWTH_FIELDS:
        row, scale = grown[name], _MIB if name.endswith("_bytes") else 1
        values = (row["warm"], row["end"], row["max_after_warm"], row["growth"])
        cells = " | ".join(f"{value / scale:,.0f}" for value in values)
        pct = "" if row["growth_pct"] is None else f" ({row['growth_pct']:+.1f}%)"
        lines.append(f"| {name.removesuffix('_bytes')} | {cells}{pct} |")
    if drained is not None:
        after = ", ".join(f"{name} {drained[name]:,}" for name in GROWTH_FIELDS[2:])
        lines += ["", f"After the load, every namespace deleted: {after}."]
    return lines


def write_plot(result: dict[str, Any], path: Path) -> None:
    """RSS/PSS, the runtime's tables and the tokens held, over time; warm-up marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples, grown = result["samples"], result["growth"]
    times = [s["t_s"] for s in samples]
    figure, axes = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    panels = (
        ("server tree memory (MiB)", ("rss_bytes", "pss_bytes"), _MIB),
        ("runtime tables", ("namespaces", "agents", "path_owners", "owned_nodes"), 1),
        ("tokens held", ("device_tokens", "host_tokens"), 1),
    )
    for axis, (title, names, scale) in zip(axes, panels, strict=True):
        for name in names:
            axis.plot(times, [s[name] / scale for s in samples], label=name.removesuffix("_bytes"))
        if grown is not None:
            axis.axvline(grown["warm_t_s"], color="grey", linestyle="--", linewidth=1)
        axis.set(ylabel=title)
        axis.legend(loc="upper left", fontsize=8)
        axis.grid(alpha=0.3)
    axes[-1].set(xlabel="time since the load started (s)")
    figure.suptitle(f"Soak ({result['machine']['name']}): dashed line = warm-up mark")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    """Every :class:`SoakParams` field as ``--field-name``; ``--out-dir`` and ``--log-path``."""
    defaults = SoakParams()
    for field in dataclasses.fields(SoakParams):
        default = getattr(defaults, field.name)
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{PARAM_HELP[field.name]} (default {default:g})"
        parser.add_argument(flag, type=type(default), default=default, help=help_text)
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument(
        "--log-path", type=Path, help="server log (default $SCALESIM_HOME/soak-serve.log)"
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run the soak as parsed; print and write the results. 1 if the server never started."""
    names = [field.name for field in dataclasses.fields(SoakParams)]
    try:
        params = SoakParams(**{name: getattr(args, name) for name in names})
    except ValueError as err:
        print(f"scalesim bench soak: {err}")
        return 2
    try:
        result = run(params, log_path=args.log_path or default_home() / "soak-serve.log")
    except ServerStartError as err:
        print(f"[soak] {err}")
        return 1
    report = render(result)
    print(report)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"soak-{result['machine']['name']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(report)
    write_plot(result, stem.with_suffix(".png"))
    print(f"[soak] wrote {stem}.json, .md and .png")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_soak_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
