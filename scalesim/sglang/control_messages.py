"""The control channel's wire types: what the HTTP process asks the schedulers, and their reply.

Who uses it: the HTTP process (``scalesim.sglang.control``) builds the requests from checked
control bodies and reads the replies; the schedulers (``scalesim.sglang.state``) answer them.
They travel on SGLang's own tokenizer->scheduler socket, so every tensor-parallel rank sees an
update at the same point of the request stream.

Invariants: every type is a ``BaseReq`` (SGLang's msgpack tagged union) and is registered with
``io_struct.hook_custom_types`` in every SGLang process before any is sent (the plug-in does it
in ``register_extras``): the main process decodes replies, the schedulers and the
data-parallel controller decode requests. Field values are checked before they are sent; the
schedulers trust their shape and decide only what needs state (409, 404).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sglang.srt.managers.io_struct import BaseReq

#: Body keys of a state snapshot that add up across data-parallel ranks (each has its own tree).
_SUMMED_STATE_KEYS = ("owned_nodes", "path_owners", "tokens", "counters")


class ScaleSimDistancesReqInput(BaseReq, kw_only=True):  # type: ignore[call-arg]
    """``POST /scalesim/v1/distances``, checked (``next_call`` values are absolute times)."""

    namespace: str
    clock: float
    version: int | None = None
    next_call: dict[str, float | None]
    unknown: list[str]


class ScaleSimStateReqInput(BaseReq, kw_only=True):  # type: ignore[call-arg]
    """``GET /scalesim/v1/state``: a snapshot, of one namespace when ``namespace`` is set."""

    namespace: str | None = None


class ScaleSimDropNamespaceReqInput(BaseReq, kw_only=True):  # type: ignore[call-arg]
    """``DELETE /scalesim/v1/namespaces/{namespace}``."""

    namespace: str


class ScaleSimAdaptersReqInput(BaseReq, kw_only=True):  # type: ignore[call-arg]
    """``POST /scalesim/v1/adapters``, checked: which adapter each agent uses (None: none)."""

    namespace: str
    adapters: dict[str, str | None]


class ScaleSimHostAdapterVictimReqInput(BaseReq, kw_only=True):  # type: ignore[call-arg]
    """Which adapter leaves host memory (``--max-loaded-loras``); asked by the LoRA registry
    of the main process. ``candidates`` are adapter names, least recently used first."""

    candidates: list[str]


class ScaleSimControlReqOutput(BaseReq, kw_only=True):  # type: ignore[call-arg]
    """A scheduler's answer to any ScaleSim control request: the HTTP status and JSON body."""

    status: int
    body: dict[str, Any]


#: Every ScaleSim type that crosses a process boundary.
MESSAGE_TYPES: tuple[type[BaseReq], ...] = (
    ScaleSimDistancesReqInput,
    ScaleSimStateReqInput,
    ScaleSimDropNamespaceReqInput,
    ScaleSimAdaptersReqInput,
    ScaleSimHostAdapterVictimReqInput,
    ScaleSimControlReqOutput,
)


def error_reply(status: int, message: str) -> ScaleSimControlReqOutput:
    """A failed answer: ``{"error": message}`` with ``status``."""
    return ScaleSimControlReqOutput(status=status, body={"error": message})


def merge_replies(
    replies: Sequence[ScaleSimControlReqOutput], *, summed: bool = False
) -> ScaleSimControlReqOutput:
    """One answer from the replies of every data-parallel rank (one reply without DP).

    The first failure wins. Otherwise the first reply answers: every rank received the same
    control requests in the same order. With ``summed`` (state snapshots) the per-tree numbers
    (owned nodes, tokens, counters) are added up over the ranks.
    """
    if not replies:
        return error_reply(503, "no scheduler answered the ScaleSim control request")
    for reply in replies:
        if reply.status != 200:
            return reply
    if not summed or len(replies) == 1:
        return replies[0]
    body = dict(replies[0].body)
    for key in _SUMMED_STATE_KEYS:
        if key in body:
            body[key] = _sum_values([reply.body.get(key) for reply in replies])
    return ScaleSimControlReqOutput(status=200, body=body)


def _sum_values(values: list[Any]) -> Any:
    """Leaf-wise sum of equally shaped JSON values (numbers, or objects of them)."""
    first = values[0]
    if isinstance(first, dict):
        return {key: _sum_values([value[key] for value in values]) for key in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return sum(values)
    return first
