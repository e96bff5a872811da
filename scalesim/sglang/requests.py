"""Request metadata in the scheduler: which (namespace, agent) a request belongs to.

Who calls it: the AFTER hook on ``Scheduler._create_generation_req`` (``scalesim.patches``).
The HTTP process has already refused malformed ``custom_params.scalesim`` with a 400, so a value
that fails to parse here (a request sent straight to the scheduler) is ignored: the request runs
as stock SGLang.
"""

from __future__ import annotations

from typing import Any

from scalesim.runtime import ContractError, parse_agent_meta
from scalesim.sglang.eviction import runtime_of


def observe_request(scheduler: Any, req: Any, recv_req: Any) -> None:
    """Set ``req.scalesim_owner`` and ``req.scalesim_clock`` (for the queue order) and feed the
    request's clock and next_call to the runtime."""
    runtime = runtime_of(getattr(scheduler, "tree_cache", None))
    if runtime is None:
        return
    params = getattr(getattr(recv_req, "sampling_params", None), "custom_params", None)
    try:
        meta = parse_agent_meta(params)
    except ContractError:
        return
    if meta is not None:
        req.scalesim_owner = runtime.observe(meta)
        req.scalesim_clock = meta.clock
