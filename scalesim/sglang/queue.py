"""SGLang's waiting queue in ScaleSim's order when ``queue_order`` is ``lag``.

Who calls it: the AFTER hook on ``SchedulePolicy.calc_priority`` (``scalesim.patches.scheduler``),
which SGLang runs before it picks the requests of the next prefill batch. SGLang's policy
(``--schedule-policy``: fcfs, lpm, ...) sorts first; ScaleSim then stable-sorts by how far each
request's ``clock`` lags its namespace's clock (:func:`~scalesim.runtime.lag_order`), so
requests of equal lag keep SGLang's order.

Invariants: returns at once unless the tree runs the ``scalesim`` strategy with
``queue_order: lag``; reorders in place and never adds or drops a request; reads request tags
set by the request hook and the runtime's clocks only (every tensor-parallel rank agrees).
"""

from __future__ import annotations

from typing import Any

from scalesim.runtime import QueuedCall, QueueOrder, lag_order, split_owner
from scalesim.sglang.eviction import runtime_of


def order_waiting_queue(tree_cache: Any, waiting_queue: list[Any]) -> None:
    """Re-sort ``waiting_queue`` (SGLang's list of ``Req``) by lag, largest first."""
    runtime = runtime_of(tree_cache)
    if runtime is None or runtime.config.queue_order is not QueueOrder.LAG:
        return
    if len(waiting_queue) < 2:
        return
    calls = [_queued(req) for req in waiting_queue]
    waiting_queue[:] = [waiting_queue[index] for index in lag_order(runtime, calls)]


def _queued(req: Any) -> QueuedCall:
    owner: str | None = getattr(req, "scalesim_owner", None)
    namespace = "" if owner is None else split_owner(owner)[0]
    return QueuedCall(namespace, getattr(req, "scalesim_clock", None))
