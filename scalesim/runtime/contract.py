"""The public wire contract (``shared/api.md`` sections 1 and 2), checked in one place.

Who calls it: the HTTP process (request metadata before a request is queued, control endpoint
bodies before anything reaches a scheduler), the client SDK (the same rules locally) and the
runtime (which receives only checked values). Pure standard library.

Invariants: a parser either returns a frozen, fully checked value or raises
:class:`ContractError` naming the offending field, with the HTTP status to answer; nothing is
partially accepted. Owner keys join namespace and agent with ``|``, a character ids may not
contain, so no two (namespace, agent) pairs and no radix-node key can share a key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

#: Namespace of requests and updates that name none.
DEFAULT_NAMESPACE = "default"
#: Most agents in one ``POST /scalesim/v1/distances`` (413 above).
MAX_UPDATE_AGENTS = 100_000
#: Largest control request body accepted, in bytes (413 above): 100,000 agents fit easily.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Longest namespace or agent id, in characters.
MAX_NAME_CHARS = 128

_NAME = re.compile(r"[A-Za-z0-9._:@/-]+")
_OWNER_SEPARATOR = "|"
_META_KEYS = frozenset({"agent", "namespace", "clock", "next_call"})
_UPDATE_KEYS = frozenset({"namespace", "clock", "version", "next_call", "unknown"})
_DECLARATION_KEYS = frozenset({"namespace", "adapters"})


class ContractError(ValueError):
    """Input the contract refuses; ``status`` is the HTTP status to answer (400, 409, 413)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AgentMeta:
    """One request's ``custom_params.scalesim``, checked.

    ``next_call`` None with ``no_call`` False: the request said nothing about the next call;
    ``no_call`` True: it said ``"next_call": null``, no further call expected.
    """

    agent: str
    namespace: str = DEFAULT_NAMESPACE
    clock: float | None = None
    next_call: float | None = None
    no_call: bool = False

    @property
    def owner(self) -> str:
        return owner_key(self.namespace, self.agent)


@dataclass(frozen=True)
class DistanceUpdate:
    """One ``POST /scalesim/v1/distances`` body, checked (``next_call`` values are absolute)."""

    namespace: str
    clock: float
    version: int | None
    next_call: Mapping[str, float | None]
    unknown: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdapterDeclaration:
    """One ``POST /scalesim/v1/adapters`` body, checked: agent -> adapter name (None: none)."""

    namespace: str
    adapters: Mapping[str, str | None]


def owner_key(namespace: str, agent: str) -> str:
    """The runtime's key of ``agent`` in ``namespace`` (unique: ``|`` is not an id character)."""
    return f"{namespace}{_OWNER_SEPARATOR}{agent}"


def split_owner(owner: str) -> tuple[str, str]:
    """(namespace, agent) of an owner key."""
    namespace, _, agent = owner.partition(_OWNER_SEPARATOR)
    return namespace, agent


def check_name(value: object, *, field: str) -> str:
    """A namespace or agent id: 1-128 characters from ``[A-Za-z0-9._:@/-]``."""
    if not isinstance(value, str):
        raise ContractError(f"{field} must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= MAX_NAME_CHARS:
        raise ContractError(f"{field} must have 1-{MAX_NAME_CHARS} characters, got {len(value)}")
    if _NAME.fullmatch(value) is None:
        raise ContractError(f"{field} {value[:40]!r} may only use characters [A-Za-z0-9._:@/-]")
    return value


def check_time(value: object, *, field: str) -> float:
    """A clock or next-call time: a finite number >= 0 (bool refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"{field} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0.0:
        raise ContractError(f"{field} must be a finite number >= 0, got {value!r}")
    return number


def parse_agent_meta(custom_params: object) -> AgentMeta | None:
    """The ``scalesim`` entry of a request's ``custom_params``; None when it has none.

    Raises:
        ContractError: (400) ``scalesim`` is present but breaks a rule of api.md section 1.
    """
    if custom_params is None:
        return None
    if not isinstance(custom_params, Mapping):
        raise ContractError("custom_params must be an object")
    if "scalesim" not in custom_params:
        return None
    value = custom_params["scalesim"]
    if not isinstance(value, Mapping):
        raise ContractError("custom_params.scalesim must be an object")
    unknown = sorted(str(key) for key in value if key not in _META_KEYS)
    if unknown:
        raise ContractError(f"custom_params.scalesim has unknown key(s): {', '.join(unknown)}")
    if "agent" not in value:
        raise ContractError("custom_params.scalesim.agent is required")
    prefix = "custom_params.scalesim."
    agent = check_name(value["agent"], field=prefix + "agent")
    namespace = check_name(value.get("namespace", DEFAULT_NAMESPACE), field=prefix + "namespace")
    clock = _optional_time(value.get("clock"), field=prefix + "clock")
    next_call = _optional_time(value.get("next_call"), field=prefix + "next_call")
    if clock is not None and next_call is not None and next_call < clock:
        raise ContractError(f"{prefix}next_call ({next_call}) must be >= clock ({clock})")
    no_call = "next_call" in value and value["next_call"] is None
    return AgentMeta(agent, namespace, clock, next_call, no_call=no_call)


def parse_distance_update(body: object) -> DistanceUpdate:
    """A ``POST /scalesim/v1/distances`` body, all of it checked before anything is applied.

    Raises:
        ContractError: 400 for any rule of api.md section 2, 413 above ``MAX_UPDATE_AGENTS``.
    """
    body = _object_body(body, _UPDATE_KEYS)
    for required in ("clock", "next_call"):
        if required not in body:
            raise ContractError(f"{required} is required")
    namespace = check_name(body.get("namespace", DEFAULT_NAMESPACE), field="namespace")
    clock = check_time(body["clock"], field="clock")
    version = _version(body.get("version"))
    next_call = _next_calls(body["next_call"], clock=clock)
    unknown = _unknown_agents(body.get("unknown", []))
    if len(next_call) + len(unknown) > MAX_UPDATE_AGENTS:
        raise ContractError(f"more than {MAX_UPDATE_AGENTS} agents in one update", status=413)
    both = sorted(set(unknown) & set(next_call))
    if both:
        raise ContractError(f"agent {both[0]!r} is in both next_call and unknown")
    return DistanceUpdate(namespace, clock, version, next_call, unknown)


def _object_body(body: object, keys: frozenset[str]) -> Mapping[str, object]:
    """``body`` as a JSON object with only ``keys``."""
    if not isinstance(body, Mapping):
        raise ContractError("the body must be a JSON object")
    unknown_keys = sorted(str(key) for key in body if key not in keys)
    if unknown_keys:
        raise ContractError(f"unknown key(s): {', '.join(unknown_keys)}")
    return body


def _agent_map(value: object, *, what: str, values: str) -> Mapping[object, object]:
    """``value`` as an object keyed by agent ids, of at most ``MAX_UPDATE_AGENTS`` entries."""
    if not isinstance(value, Mapping):
        raise ContractError(f"{what} must be an object mapping agent ids to {values} or null")
    if len(value) > MAX_UPDATE_AGENTS:
        raise ContractError(f"more than {MAX_UPDATE_AGENTS} agents in one update", status=413)
    return value


def _optional_time(value: object, *, field: str) -> float | None:
    return None if value is None else check_time(value, field=field)


def _version(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ContractError(f"version must be an integer >= 0, got {value!r}")
    return value


def _next_calls(value: object, *, clock: float) -> dict[str, float | None]:
    value = _agent_map(value, what="next_call", values="times")
    checked: dict[str, float | None] = {}
    for agent, when in value.items():
        name = check_name(agent, field="next_call key")
        field = f"next_call[{name!r}]"
        at = _optional_time(when, field=field)
        if at is not None and at < clock:
            raise ContractError(f"{field} ({at}) must be >= clock ({clock})")
        checked[name] = at
    return checked


def _unknown_agents(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ContractError("unknown must be a list of agent ids")
    if len(value) > MAX_UPDATE_AGENTS:
        raise ContractError(f"more than {MAX_UPDATE_AGENTS} agents in one update", status=413)
    return tuple(check_name(agent, field="unknown entry") for agent in value)


def check_adapter_name(value: object, *, field: str) -> str:
    """An adapter name as SGLang's ``base:adapter`` model syntax carries it: a non-empty string
    of at most ``MAX_NAME_CHARS`` characters."""
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
        raise ContractError(
            f"{field} must be an adapter name of 1-{MAX_NAME_CHARS} characters, got {value!r}"
        )
    return value


def parse_adapter_declaration(body: object) -> AdapterDeclaration:
    """A ``POST /scalesim/v1/adapters`` body (``{"namespace", "adapters": {agent: name|null}}``),
    all of it checked before anything is applied.

    Raises:
        ContractError: 400 for a malformed body, 413 above ``MAX_UPDATE_AGENTS`` agents.
    """
    body = _object_body(body, _DECLARATION_KEYS)
    namespace = check_name(body.get("namespace", DEFAULT_NAMESPACE), field="namespace")
    adapters = _agent_map(body.get("adapters"), what="adapters", values="adapter names")
    checked: dict[str, str | None] = {}
    for agent, adapter in adapters.items():
        name = check_name(agent, field="adapters key")
        field = f"adapters[{name!r}]"
        checked[name] = None if adapter is None else check_adapter_name(adapter, field=field)
    return AdapterDeclaration(namespace, checked)
