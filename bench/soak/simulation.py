"""The load on the server: simulations that tick and drop namespaces, and threads that chat.

Called by ``load.drive``, which runs one :meth:`Simulation.run` thread per simulation and
``chat_threads`` :func:`chat_worker` threads until its stop event is set.
Invariants: each simulation ticks from one thread with increasing clocks and SDK-allocated
versions; an episode's chats drain before its namespace is checked and deleted, so no chat can
recreate a deleted namespace; a namespace whose server version differs from the last accepted
one counts as a lost update; errors are counted in the :class:`~.tally.Tally`, never raised.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import time
from collections.abc import Sequence

import openai
from openai.types.chat import ChatCompletionMessageParam

from scalesim.client import Delivery, ScaleSim, ScaleSimError, ScaleSimHTTPError
from scalesim.demo import persona

from .params import SERVED_MODEL_NAME, SoakParams
from .tally import Tally

_CHAT_TIMEOUT_S = 60.0


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
