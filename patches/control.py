"""Hooks for ScaleSim's control plane: metadata checks, control routes and the control channel.

Two groups, by process:

- Every SGLang process: the control message types join SGLang's msgpack union
  (:func:`register_message_types`), and each scheduler's request dispatcher answers them
  (:func:`after_init_request_dispatcher`).
- The main (HTTP) process only: request metadata is checked where SGLang validates OpenAI and
  native requests (so a violation is an HTTP 400 and the request never runs), the tokenizer
  manager routes replies to ScaleSim's channel, and the control routes join SGLang's app before
  its API key middleware is set up (:func:`add_routes`).

Each hook only translates and calls ``scalesim.sglang.control`` or ``scalesim.sglang.state``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from scalesim.sglang.guard import guarded


def register_message_types() -> None:
    """Add ScaleSim's control types to SGLang's IPC codec (``io_struct.hook_custom_types``)."""
    from sglang.srt.managers.io_struct import hook_custom_types

    from scalesim.sglang.control_messages import MESSAGE_TYPES

    hook_custom_types(*MESSAGE_TYPES)


def add_routes() -> None:
    """Add the control endpoints to SGLang's FastAPI app (main process, before it serves)."""
    from sglang.srt.entrypoints.http_server import app

    from scalesim.sglang.control import ROUTES

    existing = {getattr(route, "path", None) for route in app.router.routes}
    for path, endpoint, methods in ROUTES:
        if path not in existing:
            app.add_api_route(path, endpoint, methods=methods)


# ---- scheduler (every scheduler process) ----------------------------------------------------
def after_init_request_dispatcher(result: Any, scheduler: Any) -> None:
    """AFTER ``Scheduler.init_request_dispatcher``: answer ScaleSim's control messages.

    Not guarded: a scheduler that could not add these entries would later raise on the first
    control message inside its loop, so failing at construction (server start) is safer.
    """
    from sglang.utils import TypeBasedDispatcher

    from scalesim.sglang.state import dispatch_pairs

    scheduler._request_dispatcher += TypeBasedDispatcher(dispatch_pairs(scheduler))


# ---- tokenizer manager (main process) -------------------------------------------------------
@guarded("init_communicators")
def after_init_communicators(result: Any, tokenizer_manager: Any) -> None:
    """AFTER ``TokenizerControlMixin.init_communicators``: a channel whose replies the
    manager's result dispatcher routes back (without it the routes answer 503)."""
    from sglang.srt.runtime_context import get_parallel
    from sglang.utils import TypeBasedDispatcher

    from scalesim.sglang.control import CHANNEL_ATTR, ControlChannel
    from scalesim.sglang.control_messages import ScaleSimControlReqOutput

    channel = ControlChannel(
        tokenizer_manager._dispatch_to_scheduler, fan_out=get_parallel().num_dp_ranks
    )
    tokenizer_manager._result_dispatcher += TypeBasedDispatcher(
        [(ScaleSimControlReqOutput, channel.handle_reply)]
    )
    setattr(tokenizer_manager, CHANNEL_ATTR, channel)


@guarded("update_control_communicator_fan_out")
def after_update_control_communicator_fan_out(
    result: Any, tokenizer_manager: Any, worker_count: int
) -> None:
    """AFTER ``TokenizerControlMixin.update_control_communicator_fan_out``: wait for as many
    replies as SGLang's own control calls do once the data-parallel worker count changes."""
    from scalesim.sglang.control import CHANNEL_ATTR

    channel = getattr(tokenizer_manager, CHANNEL_ATTR, None)
    if channel is not None:
        channel.set_fan_out(worker_count)


def before_validate_one_request(
    tokenizer_manager: Any, obj: Any, *args: Any, **kwargs: Any
) -> None:
    """BEFORE ``TokenizerManager._validate_one_request``: refuse malformed metadata on every
    route that reaches the tokenizer (ContractError is a ValueError: SGLang answers 400).

    Not guarded: raising is the point; it only raises ContractError.
    """
    from scalesim.sglang.control import check_request_metadata

    params = getattr(obj, "sampling_params", None)
    if isinstance(params, dict):
        check_request_metadata(params.get("custom_params"))


# ---- HTTP routes (main process) -------------------------------------------------------------
def around_validate_openai_request(
    original: Callable[..., str | None], serving: Any, request: Any, *args: Any, **kwargs: Any
) -> str | None:
    """AROUND ``OpenAIServingChat/OpenAIServingCompletion._validate_request``: SGLang's checks,
    then ScaleSim's; the returned message becomes a 400 before the request is converted."""
    error = original(serving, request, *args, **kwargs)
    if error:
        return error
    from scalesim.sglang.control import metadata_error

    return metadata_error(getattr(request, "custom_params", None))


def around_generate_contract_error(
    original: Callable[..., str | None], body: Any, *args: Any, **kwargs: Any
) -> str | None:
    """AROUND ``http_server.generate_contract_error``: SGLang's schema check of a native
    ``/generate`` body, then ScaleSim's metadata check; a message becomes a 400."""
    error = original(body, *args, **kwargs)
    if error is not None:
        return error
    from scalesim.sglang.control import generate_body_error

    return generate_body_error(body)
