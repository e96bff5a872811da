"""Typed, frozen records of the control endpoints' replies (api.md section 2).

Who builds them: the client's request plans (``scalesim.client.plans``) from the JSON the
server returns; simulations read them. Unknown extra keys are ignored (a newer server may add
some); a missing or mistyped known key raises :class:`ScaleSimProtocolError`, so a record never
holds a half-parsed value.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .errors import ScaleSimProtocolError


class Delivery(enum.Enum):
    """How a control call took effect."""

    APPLIED = "applied"  # this call's reply says the server applied it
    ALREADY_APPLIED = "already_applied"  # an earlier send of the same call had (its reply lost)


@dataclass(frozen=True)
class TickReply:
    """The answer to one ``tick`` (``POST /scalesim/v1/distances``).

    ``applied`` is the server's count of agent entries applied, None for ``ALREADY_APPLIED``
    (the reply that held it was lost). ``version`` and ``clock`` are the server's for
    ``APPLIED`` and the ones this tick sent for ``ALREADY_APPLIED``.
    """

    namespace: str
    applied: int | None
    version: int | None
    clock: float
    delivery: Delivery = Delivery.APPLIED


@dataclass(frozen=True)
class DropReply:
    """The answer to ``drop_namespace``: what was forgotten (None: dropped by a lost reply)."""

    namespace: str
    agents: int | None
    path_owners: int | None
    delivery: Delivery = Delivery.APPLIED


@dataclass(frozen=True)
class NamespaceInfo:
    """One namespace of a state snapshot: its clock, last version and known agents."""

    name: str
    clock: float
    version: int | None
    agents: int


@dataclass(frozen=True)
class TierTokens:
    """Tokens one memory tier holds, by the distance class of their nearest owner."""

    near: int
    far: int
    unknown: int


@dataclass(frozen=True)
class StateSnapshot:
    """``GET /scalesim/v1/state``: server-wide, or one namespace's (counters stay server-wide)."""

    namespaces: tuple[NamespaceInfo, ...]
    agents: int
    path_owners: int
    owned_nodes: int
    device_tokens: TierTokens
    host_tokens: TierTokens
    counters: Mapping[str, int]

    def find(self, name: str) -> NamespaceInfo | None:
        """The namespace called ``name``, or None when the snapshot has none."""
        return next((info for info in self.namespaces if info.name == name), None)


def tick_reply(body: object) -> TickReply:
    """Parse a 200 reply of ``POST /scalesim/v1/distances``."""
    fields = _object(body, what="distance update reply")
    return TickReply(
        namespace=_typed(fields, "namespace", str),
        applied=_typed(fields, "applied", int),
        version=_optional_int(fields, "version"),
        clock=_number(fields, "clock"),
    )


def drop_reply(body: object) -> DropReply:
    """Parse a 200 reply of ``DELETE /scalesim/v1/namespaces/{ns}``."""
    fields = _object(body, what="namespace drop reply")
    return DropReply(
        namespace=_typed(fields, "namespace", str),
        agents=_typed(fields, "agents", int),
        path_owners=_typed(fields, "path_owners", int),
    )


def state_snapshot(body: object) -> StateSnapshot:
    """Parse a 200 reply of ``GET /scalesim/v1/state``."""
    fields = _object(body, what="state snapshot")
    namespaces = _typed(fields, "namespaces", list)
    tokens = _object(fields.get("tokens"), what="state snapshot tokens")
    counters = _object(fields.get("counters"), what="state snapshot counters")
    return StateSnapshot(
        namespaces=tuple(_namespace_info(entry) for entry in namespaces),
        agents=_typed(fields, "agents", int),
        path_owners=_typed(fields, "path_owners", int),
        owned_nodes=_typed(fields, "owned_nodes", int),
        device_tokens=_tier(tokens.get("device")),
        host_tokens=_tier(tokens.get("host")),
        counters=MappingProxyType({str(key): _typed(counters, key, int) for key in counters}),
    )


def _namespace_info(entry: object) -> NamespaceInfo:
    fields = _object(entry, what="state snapshot namespace")
    return NamespaceInfo(
        name=_typed(fields, "name", str),
        clock=_number(fields, "clock"),
        version=_optional_int(fields, "version"),
        agents=_typed(fields, "agents", int),
    )


def _tier(value: object) -> TierTokens:
    fields = _object(value, what="state snapshot tier")
    return TierTokens(*(_typed(fields, key, int) for key in ("near", "far", "unknown")))


def _object(value: object, *, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ScaleSimProtocolError(f"the {what} is not a JSON object: {value!r:.200}")
    return value


def _typed(fields: Mapping[str, Any], key: str, kind: type[Any]) -> Any:
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ScaleSimProtocolError(f"reply field {key!r} is not a {kind.__name__}: {value!r}")
    return value


def _optional_int(fields: Mapping[str, Any], key: str) -> int | None:
    return None if fields.get(key) is None else _typed(fields, key, int)


def _number(fields: Mapping[str, Any], key: str) -> float:
    value = fields.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScaleSimProtocolError(f"reply field {key!r} is not a number: {value!r}")
    return float(value)
