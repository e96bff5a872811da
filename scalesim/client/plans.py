"""The control calls of api.md section 2 as sans-I/O plans, shared by both clients.

Who calls it: ``ScaleSim`` and ``AsyncScaleSim`` build a plan per call and drive it with their
own HTTP client. A plan decides everything (what to send, when to retry, what a reply means);
a driver only performs its steps, so the sync and async clients behave identically.

Idempotency of ``tick`` (see ``scalesim.client.versions``): every attempt of one tick carries
the same version. A 409 is read as "already applied" only when (1) this client sent that very
version before, on an attempt that may have been applied (a lost reply, a 5xx, or an earlier
200 when the caller re-sends a version), and (2) the namespace's state now holds that version
or a newer one. Otherwise the 409 is raised (:class:`ScaleSimConflictError`): another writer
holds a newer version, or the clock moved backwards.
"""

from __future__ import annotations

from urllib.parse import quote

import httpx

from scalesim.runtime import AdapterDeclaration, DistanceUpdate

from .errors import ScaleSimError, ScaleSimProtocolError, http_error
from .records import (
    Delivery,
    DropReply,
    StateSnapshot,
    TickReply,
    drop_reply,
    state_snapshot,
    tick_reply,
)
from .retry import HttpCall, Plan, RetryPolicy, retrying
from .versions import VersionBook
from .wire import update_json

DISTANCES_PATH = "/scalesim/v1/distances"
STATE_PATH = "/scalesim/v1/state"
NAMESPACES_PATH = "/scalesim/v1/namespaces"
ADAPTERS_PATH = "/scalesim/v1/adapters"


def tick_plan(
    update: DistanceUpdate, *, versions: VersionBook, policy: RetryPolicy
) -> Plan[TickReply]:
    """Send one checked distance update (which carries a version) and read the reply."""
    namespace, version = update.namespace, update.version
    if version is None:
        raise ValueError("a tick always carries a version")
    sent_before = versions.was_sent(namespace, version)
    call = HttpCall("POST", DISTANCES_PATH, json=update_json(update))
    exchange = yield from retrying(
        call, policy, on_delivery=lambda: versions.mark_sent(namespace, version)
    )
    response = exchange.response
    if response.is_success:
        return tick_reply(_json(response))
    error = http_error(response.status_code, response.content, method=call.method, path=call.path)
    if response.status_code == 409 and (sent_before or exchange.earlier_delivery):
        try:
            held = yield from state_plan(namespace, policy=policy)
        except ScaleSimError as state_error:
            raise error from state_error
        info = held.find(namespace)
        if info is not None and info.version is not None and info.version >= version:
            return TickReply(namespace, None, version, update.clock, Delivery.ALREADY_APPLIED)
    raise error


def state_plan(namespace: str | None, *, policy: RetryPolicy) -> Plan[StateSnapshot]:
    """``GET /scalesim/v1/state``: server-wide when ``namespace`` is None."""
    params = None if namespace is None else {"namespace": namespace}
    call = HttpCall("GET", STATE_PATH, params=params)
    exchange = yield from retrying(call, policy)
    response = exchange.response
    if not response.is_success:
        raise http_error(response.status_code, response.content, method="GET", path=STATE_PATH)
    return state_snapshot(_json(response))


def drop_plan(namespace: str, *, versions: VersionBook, policy: RetryPolicy) -> Plan[DropReply]:
    """``DELETE /scalesim/v1/namespaces/{ns}``; a 404 after a lost reply counts as dropped."""
    path = f"{NAMESPACES_PATH}/{quote(namespace, safe='/:@')}"
    call = HttpCall("DELETE", path)
    exchange = yield from retrying(call, policy)
    response = exchange.response
    if response.is_success:
        versions.forget(namespace)
        return drop_reply(_json(response))
    if response.status_code == 404 and exchange.earlier_delivery:
        versions.forget(namespace)
        return DropReply(namespace, None, None, Delivery.ALREADY_APPLIED)
    raise http_error(response.status_code, response.content, method="DELETE", path=path)


def adapters_plan(declaration: AdapterDeclaration, *, policy: RetryPolicy) -> Plan[int]:
    """``POST /scalesim/v1/adapters``; returns how many agents were declared. Retrying is safe:
    declaring the same adapters twice leaves the same registry."""
    body = {"namespace": declaration.namespace, "adapters": dict(declaration.adapters)}
    call = HttpCall("POST", ADAPTERS_PATH, json=body)
    exchange = yield from retrying(call, policy)
    response = exchange.response
    if not response.is_success:
        raise http_error(response.status_code, response.content, method="POST", path=ADAPTERS_PATH)
    reply = _json(response)
    declared = reply.get("declared") if isinstance(reply, dict) else None
    if not isinstance(declared, int) or isinstance(declared, bool):
        raise ScaleSimProtocolError(f"adapters reply without a declared count: {reply!r}")
    return declared


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError as err:
        raise ScaleSimProtocolError(
            f"HTTP {response.status_code} reply is not JSON: {response.text[:200]!r}"
        ) from err
