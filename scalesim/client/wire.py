"""What the client puts on the wire, checked locally with the server's own rules first.

Who calls it: both clients (``ScaleSim``, ``AsyncScaleSim``) before any byte is sent. The rules
are not restated here: request metadata goes through :func:`scalesim.runtime.parse_agent_meta`
and update bodies through :func:`scalesim.runtime.parse_distance_update`, the very functions the
server's HTTP process runs, so the client refuses exactly what the server would refuse (with
the same message, naming the field) and sends exactly the values that were checked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from scalesim.runtime import (
    AdapterDeclaration,
    ContractError,
    DistanceUpdate,
    parse_adapter_declaration,
    parse_agent_meta,
    parse_distance_update,
)
from scalesim.runtime.contract import check_name

from .errors import ScaleSimValidationError

_T = TypeVar("_T")
_OPENAI_PREFIX = "/v1"


def checked(parse: Callable[[], _T]) -> _T:
    """``parse()``, with a contract violation re-raised as :class:`ScaleSimValidationError`."""
    try:
        return parse()
    except ContractError as err:
        raise ScaleSimValidationError(str(err), status=err.status) from err


def check_namespace(namespace: str) -> str:
    """A namespace id (api.md section 1 rules)."""
    return checked(lambda: check_name(namespace, field="namespace"))


def check_agent(agent: str) -> str:
    """An agent id (api.md section 1 rules)."""
    return checked(lambda: check_name(agent, field="agent"))


def base_url(url: str) -> str:
    """The server root: trailing ``/`` and a trailing OpenAI ``/v1`` are removed."""
    root = url.rstrip("/")
    if root.endswith(_OPENAI_PREFIX):
        root = root[: -len(_OPENAI_PREFIX)]
    if not root.startswith(("http://", "https://")):
        raise ValueError(f"the server URL must start with http:// or https://, got {url!r}")
    return root


def control_headers(*, api_key: str | None, admin_key: str | None) -> dict[str, str]:
    """Headers of the control routes: the admin key, else the API key, else none (open)."""
    key = admin_key if admin_key is not None else api_key
    return {} if key is None else {"Authorization": f"Bearer {key}"}


def scalesim_extra_body(
    agent: str,
    *,
    namespace: str,
    clock: float | None = None,
    next_call: float | None = None,
    extra_body: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``extra_body`` of an OpenAI call: the caller's, plus ``custom_params.scalesim``.

    Args:
        agent: the calling agent's id.
        namespace: the simulation's namespace.
        clock: the simulation's time now (its own unit), or None to leave it out.
        next_call: this agent's next expected call (same unit), or None to leave it out.
        extra_body: the caller's own ``extra_body``; its other keys, and the other keys of its
            ``custom_params``, are kept.

    Raises:
        ScaleSimValidationError: metadata the server would refuse, or a caller ``extra_body``
            that already sets ``custom_params.scalesim``.
    """
    meta: dict[str, Any] = {"agent": agent, "namespace": namespace}
    if clock is not None:
        meta["clock"] = clock
    if next_call is not None:
        meta["next_call"] = next_call
    checked(lambda: parse_agent_meta({"scalesim": meta}))
    merged = dict(extra_body or {})
    custom = merged.get("custom_params")
    if custom is None:
        custom = {}
    if not isinstance(custom, Mapping):
        raise ScaleSimValidationError("extra_body.custom_params must be an object")
    if "scalesim" in custom:
        raise ScaleSimValidationError(
            "extra_body.custom_params.scalesim is set by the client: pass agent, clock and "
            "next_call as arguments instead"
        )
    merged["custom_params"] = {**custom, "scalesim": meta}
    return merged


def model_name(base_model: str, adapter: str | None) -> str:
    """SGLang's model syntax: ``base`` alone, or ``base:adapter`` to run a LoRA adapter."""
    if adapter is None:
        return base_model
    if not isinstance(adapter, str) or not adapter or adapter.strip() != adapter:
        raise ScaleSimValidationError(
            f"adapter must be a non-empty name without surrounding spaces, got {adapter!r}"
        )
    return f"{base_model}:{adapter}"


def distance_update(
    *,
    namespace: str,
    clock: float,
    version: int,
    next_call: Mapping[str, float | None],
    unknown: Iterable[str] = (),
) -> DistanceUpdate:
    """A ``POST /scalesim/v1/distances`` update, checked as the server checks it.

    Raises:
        ScaleSimValidationError: 400 (or 413 above ``MAX_UPDATE_AGENTS``), naming the field.
    """
    if isinstance(unknown, (str, bytes)):
        raise ScaleSimValidationError("unknown must be a list of agent ids, not a string")
    body: dict[str, object] = {
        "namespace": namespace,
        "clock": clock,
        "version": version,
        "next_call": next_call,
        # Not a list (None, a number): passed as is, so the server's parser names the error.
        "unknown": list(unknown) if isinstance(unknown, Iterable) else unknown,
    }
    return checked(lambda: parse_distance_update(body))


def update_json(update: DistanceUpdate) -> dict[str, Any]:
    """The JSON body of a checked update (``unknown`` left out when empty)."""
    body: dict[str, Any] = {
        "namespace": update.namespace,
        "clock": update.clock,
        "version": update.version,
        "next_call": dict(update.next_call),
    }
    if update.unknown:
        body["unknown"] = list(update.unknown)
    return body


def adapter_declaration(
    adapters: Mapping[str, str | None], *, namespace: str
) -> AdapterDeclaration:
    """A checked ``POST /scalesim/v1/adapters`` body (the server's own parser)."""
    body = {"namespace": namespace, "adapters": dict(adapters)}
    return checked(lambda: parse_adapter_declaration(body))
