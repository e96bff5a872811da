"""Request metadata in the scheduler: which (namespace, agent) a request belongs to.

Who calls it: the AFTER hook on ``Scheduler._create_generation_req`` (``scalesim.patches``).
The HTTP process has already refused malformed ``custom_params.scalesim`` with a 400, so a value
that fails to parse here (a request sent straight to the scheduler) is ignored: the request runs
as stock SGLang.

Behind sglang-router (``scalesim cluster``) chat and ``/generate`` bodies lose
``custom_params``: the router re-serialises them. Its routing-key header survives (SGLang carries
``X-SMG-Routing-Key`` to the scheduler as ``routing_key``), and the SDK sets it to
``namespace|agent``: a request without metadata whose routing key has that shape is owned by
that agent (no clock or ``next_call``: those arrive by ``tick``). Any other routing key is
SGLang's own business and ignored.
"""

from __future__ import annotations

from typing import Any

from scalesim.runtime import AgentMeta, ContractError, parse_agent_meta, split_owner
from scalesim.runtime.contract import check_name
from scalesim.sglang.eviction import runtime_of
from scalesim.sglang.prefetch import LARGEST_REQUEST_ATTR, request_tokens


def observe_request(scheduler: Any, req: Any, recv_req: Any) -> None:
    """Set ``req.scalesim_owner`` and ``req.scalesim_clock`` (for the queue order), feed the
    request's clock and next_call to the runtime, and track the largest request (prefetch
    leaves room for one)."""
    runtime = runtime_of(getattr(scheduler, "tree_cache", None))
    if runtime is None:
        return
    largest = max(getattr(scheduler, LARGEST_REQUEST_ATTR, 0), request_tokens(req))
    setattr(scheduler, LARGEST_REQUEST_ATTR, largest)
    params = getattr(getattr(recv_req, "sampling_params", None), "custom_params", None)
    try:
        meta = parse_agent_meta(params)
    except ContractError:
        return
    if meta is None:
        meta = meta_from_routing_key(getattr(recv_req, "routing_key", None))
    if meta is not None:
        req.scalesim_owner = runtime.observe(meta)
        req.scalesim_clock = meta.clock


def meta_from_routing_key(routing_key: object) -> AgentMeta | None:
    """The agent a ``namespace|agent`` routing key names (the SDK's), else None."""
    if not isinstance(routing_key, str) or "|" not in routing_key:
        return None
    namespace, agent = split_owner(routing_key)
    try:
        return AgentMeta(check_name(agent, field="agent"), check_name(namespace, field="namespace"))
    except ContractError:
        return None
