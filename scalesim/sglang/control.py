"""The HTTP process's side of ScaleSim: request metadata checks and the control endpoints.

Who calls it: the hooks of ``scalesim.patches.control`` (metadata checks on SGLang's request
validation points, the reply channel on the tokenizer manager) and FastAPI, for the routes the
plug-in adds to SGLang's app in the main process:

- ``POST /scalesim/v1/distances``: a batched distance update (api.md section 2).
- ``GET /scalesim/v1/state[?namespace=NS]``: a read-only snapshot.
- ``DELETE /scalesim/v1/namespaces/{namespace}``: forget a finished simulation.
- ``POST /scalesim/v1/adapters``: declare which LoRA adapter each agent uses, before it calls.

The routes are marked ``ADMIN_OPTIONAL``, SGLang's level for admin routes, enforced by its API
key middleware: with ``--admin-api-key`` only that key opens them, with only ``--api-key`` that
key does, with no key they are open.

Invariants: everything the contract can decide without state is decided here, before anything
is sent (400 malformed, 413 too large); only the schedulers decide 409 and 404. A control
request travels on the same socket as generation requests, so it is applied between the same
two requests on every tensor-parallel rank.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from sglang.srt.managers.communicator import FanOutCommunicator
from sglang.srt.utils.auth import AuthLevel, auth_level
from sglang.srt.utils.json_response import orjson_response
from starlette.requests import Request
from starlette.responses import Response

from scalesim.runtime import (
    MAX_BODY_BYTES,
    ContractError,
    parse_adapter_declaration,
    parse_agent_meta,
    parse_distance_update,
)
from scalesim.runtime.contract import check_name
from scalesim.sglang.control_messages import (
    ScaleSimAdaptersReqInput,
    ScaleSimControlReqOutput,
    ScaleSimDistancesReqInput,
    ScaleSimDropNamespaceReqInput,
    ScaleSimStateReqInput,
    error_reply,
    merge_replies,
)

#: Attribute of SGLang's tokenizer manager that holds the channel (set by the plug-in's hook).
CHANNEL_ATTR = "scalesim_control"
NO_CHANNEL = "ScaleSim's control channel is not installed in this process"


# ---- request metadata (api.md section 1) ---------------------------------------------------
def metadata_error(custom_params: object) -> str | None:
    """Why a request's ``custom_params.scalesim`` is refused, or None (also when absent)."""
    try:
        check_request_metadata(custom_params)
    except ContractError as err:
        return str(err)
    return None


def check_request_metadata(custom_params: object) -> None:
    """Raise ContractError (a ValueError: SGLang answers 400) for malformed metadata.

    ``custom_params`` without a ``scalesim`` key (or of a shape SGLang judges itself) is left
    alone: such requests run as stock SGLang.
    """
    if isinstance(custom_params, Mapping) and "scalesim" in custom_params:
        parse_agent_meta(custom_params)


def generate_body_error(body: object) -> str | None:
    """The metadata error of a native ``/generate`` JSON body (one or a batch of requests)."""
    if not isinstance(body, Mapping):
        return None
    params = body.get("sampling_params")
    for one in params if isinstance(params, list) else [params]:
        if isinstance(one, Mapping):
            error = metadata_error(one.get("custom_params"))
            if error is not None:
                return error
    return None


# ---- the reply channel ----------------------------------------------------------------------
class ControlChannel:
    """Request/reply with the schedulers over SGLang's own sockets, one call at a time.

    SGLang's ``FanOutCommunicator``: a call sends one message and waits for one reply per
    data-parallel rank (the tokenizer manager routes each ``ScaleSimControlReqOutput`` to
    :meth:`handle_reply`); concurrent calls queue in arrival order.
    """

    def __init__(self, send: Callable[[Any], None], *, fan_out: int) -> None:
        self._communicator: FanOutCommunicator[Any] = FanOutCommunicator(send, fan_out)

    async def call(self, message: Any) -> list[ScaleSimControlReqOutput]:
        """Send ``message`` to the schedulers and return every rank's reply."""
        replies: list[ScaleSimControlReqOutput] = await self._communicator(message)
        return replies

    def handle_reply(self, reply: ScaleSimControlReqOutput) -> None:
        """A scheduler's reply arrived (called by the tokenizer manager's result dispatcher)."""
        self._communicator.handle_recv(reply)

    def set_fan_out(self, n_replies: int) -> None:
        """The number of replies a call waits for (data-parallel ranks)."""
        self._communicator.set_fan_out(n_replies)


# ---- the endpoints --------------------------------------------------------------------------
@auth_level(AuthLevel.ADMIN_OPTIONAL)
async def post_distances(request: Request) -> Response:
    """``POST /scalesim/v1/distances``: 200 applied, 400/413 refused here, 409 stale."""
    try:
        update = parse_distance_update(await read_json_body(request))
    except ContractError as err:
        return _respond(error_reply(err.status, str(err)))
    message = ScaleSimDistancesReqInput(
        namespace=update.namespace,
        clock=update.clock,
        version=update.version,
        next_call=dict(update.next_call),
        unknown=list(update.unknown),
    )
    return _respond(await ask_schedulers(message))


@auth_level(AuthLevel.ADMIN_OPTIONAL)
async def get_state(request: Request) -> Response:
    """``GET /scalesim/v1/state[?namespace=NS]``: 200 snapshot, 404 unknown namespace."""
    namespace = request.query_params.get("namespace")
    if namespace is not None:
        try:
            check_name(namespace, field="namespace")
        except ContractError as err:
            return _respond(error_reply(err.status, str(err)))
    return _respond(await ask_schedulers(ScaleSimStateReqInput(namespace=namespace), summed=True))


@auth_level(AuthLevel.ADMIN_OPTIONAL)
async def delete_namespace(namespace: str) -> Response:
    """``DELETE /scalesim/v1/namespaces/{namespace}``: 200 what was dropped, 404 unknown."""
    try:
        check_name(namespace, field="namespace")
    except ContractError as err:
        return _respond(error_reply(err.status, str(err)))
    return _respond(await ask_schedulers(ScaleSimDropNamespaceReqInput(namespace=namespace)))


@auth_level(AuthLevel.ADMIN_OPTIONAL)
async def post_adapters(request: Request) -> Response:
    """``POST /scalesim/v1/adapters``: 200 declared, 400/413 refused, 503 without adapters."""
    try:
        declaration = parse_adapter_declaration(await read_json_body(request))
    except ContractError as err:
        return _respond(error_reply(err.status, str(err)))
    message = ScaleSimAdaptersReqInput(
        namespace=declaration.namespace, adapters=dict(declaration.adapters)
    )
    return _respond(await ask_schedulers(message))


#: (path, endpoint, methods) of every control route; ``{namespace:path}`` because ids may hold '/'.
ROUTES: tuple[tuple[str, Callable[..., Any], list[str]], ...] = (
    ("/scalesim/v1/distances", post_distances, ["POST"]),
    ("/scalesim/v1/state", get_state, ["GET"]),
    ("/scalesim/v1/namespaces/{namespace:path}", delete_namespace, ["DELETE"]),
    ("/scalesim/v1/adapters", post_adapters, ["POST"]),
)


async def read_json_body(request: Request) -> object:
    """The request body as JSON, read up to ``MAX_BODY_BYTES``.

    Raises:
        ContractError: 413 for a larger body (declared or streamed), 400 when it is not JSON.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ContractError(f"the body is larger than {MAX_BODY_BYTES} bytes", status=413)
    chunks: list[bytes] = []
    n_bytes = 0
    async for chunk in request.stream():
        n_bytes += len(chunk)
        if n_bytes > MAX_BODY_BYTES:
            raise ContractError(f"the body is larger than {MAX_BODY_BYTES} bytes", status=413)
        chunks.append(chunk)
    try:
        # The standard parser accepts NaN and Infinity, so the contract can name their field.
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as err:
        raise ContractError(f"the body is not valid JSON: {err}") from err


async def ask_schedulers(message: Any, *, summed: bool = False) -> ScaleSimControlReqOutput:
    """Send a control message to the schedulers and merge their replies (503 without a channel)."""
    from sglang.srt.entrypoints.http_server import get_global_state

    tokenizer_manager = get_global_state().tokenizer_manager
    channel = getattr(tokenizer_manager, CHANNEL_ATTR, None)
    if not isinstance(channel, ControlChannel):
        return error_reply(503, NO_CHANNEL)
    tokenizer_manager.auto_create_handle_loop()  # replies arrive on the manager's loop
    return merge_replies(await channel.call(message), summed=summed)


def _respond(reply: ScaleSimControlReqOutput) -> Response:
    return orjson_response(reply.body, status_code=reply.status)
