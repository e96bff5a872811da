"""Control calls against a cluster URL (``scalesim cluster``): discovery, fan-out, merged replies.

Who calls it: both clients' ``_perform`` (``ScaleSim``, ``AsyncScaleSim``) before every control
call (``tick``, ``state``, ``drop_namespace``). sglang-router forwards the OpenAI and native
LLM routes but answers 404 to ``/scalesim/v1/*``, so the client sends each control call to every
healthy worker the router lists (``GET /workers``, the router's own route) and combines the
workers' answers into one, as a single server would have answered. The plans of
``scalesim.client.plans`` (retries, versions, the 409 check) run unchanged on the combined
answer. A plain ``scalesim serve`` URL has no ``/workers`` route (404): the client then talks to
it directly, as before.

Invariants: every worker receives every update (broadcast: each holds the distances of the
agents it serves, and of the others, which cost it a table entry each). A worker that refuses
the connection (its process is gone, the router has not dropped it yet) is skipped and reported
once per URL: it holds no state to update. Any other failure of one worker (a timeout, a reply
lost: it may or may not have applied the call) fails the whole call, so the plan retries it on
every worker with the same version, and the workers that had applied it answer 409, which the
plan's "already applied" check resolves. The call fails outright only when no worker answered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

#: The router's header for its ``manual`` (sticky) policy: one key -> one worker.
ROUTING_KEY_HEADER = "X-SMG-Routing-Key"
#: The router's route listing its workers (JSON ``{"workers": [{"url", "is_healthy"}, ...]}``).
WORKERS_PATH = "/workers"

_log = logging.getLogger("scalesim.client")
_NOT_FOUND = 404

Outcome = httpx.Response | httpx.TransportError


def routing_key(namespace: str, agent: str) -> str:
    """The affinity key of one agent: ``namespace|agent`` (``|`` is in no id, so unambiguous)."""
    return f"{namespace}|{agent}"


def worker_urls(response: httpx.Response) -> tuple[str, ...] | None:
    """The healthy workers of a router's ``GET /workers`` reply; None: not a router.

    All listed workers are returned when none is marked healthy (the router may not have
    checked them yet); a 404 or any other shape means a plain server.
    """
    if response.status_code != 200:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    listed = body.get("workers") if isinstance(body, Mapping) else None
    if not isinstance(listed, list):
        return None
    entries = [e for e in listed if isinstance(e, Mapping) and isinstance(e.get("url"), str)]
    urls = [str(entry["url"]) for entry in entries]
    healthy = [url for url, entry in zip(urls, entries, strict=False) if entry.get("is_healthy")]
    return tuple(healthy or urls)


class SkipReport:
    """Reports each worker that refused a connection once (a log warning), until it answers."""

    def __init__(self) -> None:
        self._silent: set[str] = set()

    def note(self, urls: Sequence[str], outcomes: Sequence[Outcome]) -> None:
        """Record which workers answered; warn about newly refusing ones."""
        for url, outcome in zip(urls, outcomes, strict=True):
            if not is_down(outcome):
                self._silent.discard(url)
            elif url not in self._silent:
                reason = f"{type(outcome).__name__}: {outcome}"
                _log.warning(
                    "scalesim: worker %s refused the connection (%s); skipped", url, reason
                )
                self._silent.add(url)


def is_down(outcome: Outcome) -> bool:
    """Whether ``outcome`` proves its worker is gone: the connection was refused."""
    return isinstance(outcome, httpx.ConnectError)


def combine(method: str, outcomes: Sequence[Outcome]) -> Outcome:
    """One answer from the workers' answers to the same control call.

    - A worker failed in a way that leaves open whether it applied the call (anything but a
      refused connection): that error, so the plan retries the call on every worker.
    - No worker answered: the first transport error (the plan retries it).
    - ``POST`` (a distance update): every answering worker's 2xx -> the first one (all
      applied the same update); otherwise the first error status, so the plan reacts to it
      (a 409 triggers its state check, which the merged state answers conservatively).
    - ``GET``/``DELETE``: the 2xx answers merged (a 404 from a worker that never saw the
      namespace is ignored); any other error status wins; all 404 -> 404.
    """
    unsure = [o for o in outcomes if isinstance(o, httpx.TransportError) and not is_down(o)]
    if unsure:
        return unsure[0]  # that worker may have applied it: retry the call everywhere
    answers = [o for o in outcomes if isinstance(o, httpx.Response)]
    if not answers:
        return outcomes[0]
    good = [r for r in answers if r.is_success]
    bad = [r for r in answers if not r.is_success]
    if method == "POST":
        return bad[0] if bad else good[0]
    real_errors = [r for r in bad if r.status_code != _NOT_FOUND]
    if real_errors or not good:
        return real_errors[0] if real_errors else bad[0]
    bodies = [r.json() for r in good]
    merged = merge_states(bodies) if method == "GET" else merge_drops(bodies)
    return httpx.Response(200, json=merged, request=good[0].request)


def merge_states(bodies: Sequence[Any]) -> dict[str, Any]:
    """Workers' ``GET /scalesim/v1/state`` bodies as one cluster-wide snapshot.

    Sums: tokens, owned nodes, path owners, counters (each worker holds its own state).
    Agents and namespaces: every worker gets every update, so agents with a distance are
    the same set on each (max, not sum); a namespace's clock and version are the *lowest*
    among workers, so "version v was applied" means applied on every worker.
    """
    merged: dict[str, Any] = {"namespaces": _merge_namespaces(bodies)}
    merged["agents"] = max(int(body.get("agents", 0)) for body in bodies)
    for key in ("path_owners", "owned_nodes"):
        merged[key] = sum(int(body.get(key, 0)) for body in bodies)
    merged["tokens"] = {
        tier: _sum_maps([body.get("tokens", {}).get(tier, {}) for body in bodies])
        for tier in ("device", "host")
    }
    merged["counters"] = _sum_maps([body.get("counters", {}) for body in bodies])
    merged["workers"] = len(bodies)
    return merged


def merge_drops(bodies: Sequence[Any]) -> dict[str, Any]:
    """Workers' ``DELETE /scalesim/v1/namespaces/{ns}`` bodies: what the cluster forgot."""
    merged = dict(bodies[0])
    merged["agents"] = max(int(body.get("agents", 0)) for body in bodies)
    merged["path_owners"] = sum(int(body.get("path_owners", 0)) for body in bodies)
    return merged


def _merge_namespaces(bodies: Sequence[Any]) -> list[dict[str, Any]]:
    seen: dict[str, list[Mapping[str, Any]]] = {}
    for body in bodies:
        for entry in body.get("namespaces", []):
            seen.setdefault(str(entry.get("name")), []).append(entry)
    merged = []
    for name, entries in seen.items():
        versions = [entry.get("version") for entry in entries]
        known = [int(v) for v in versions if v is not None]
        merged.append(
            {
                **entries[0],
                "name": name,
                "clock": min(float(entry.get("clock", 0.0)) for entry in entries),
                "version": min(known) if len(known) == len(bodies) else None,
                "agents": max(int(entry.get("agents", 0)) for entry in entries),
            }
        )
    return merged


def _sum_maps(maps: Sequence[Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for values in maps:
        for key, value in dict(values).items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    return total


class ClusterView:
    """What one client knows of its URL: a plain server, a router (and its workers), or not yet.

    Sans-I/O: the client performs ``GET /workers`` and hands the outcome to :meth:`targets`.
    A 404 settles "plain server" for good; a router's list is re-read before every control
    call, so workers the router dropped (dead, removed) stop receiving updates at once.
    """

    def __init__(self) -> None:
        self.is_router: bool | None = None
        self.report = SkipReport()

    def targets(self, listing: Outcome) -> tuple[str, ...] | None:
        """Worker URLs to fan the next control call out to; None: send it to the URL itself."""
        if isinstance(listing, httpx.TransportError):
            return None  # the call itself will fail the same way and be retried
        urls = worker_urls(listing)
        if urls is None:
            if listing.status_code == _NOT_FOUND:
                self.is_router = False
            return None
        self.is_router = True
        return urls or None

    def combine(self, method: str, urls: Sequence[str], outcomes: Sequence[Outcome]) -> Outcome:
        """:func:`combine`, after reporting the workers that did not answer."""
        self.report.note(urls, outcomes)
        return combine(method, outcomes)
