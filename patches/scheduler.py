"""Hooks on SGLang's scheduler: request metadata into the runtime, host-tier prefetch, and
the optional queue order.

All run in every tensor-parallel rank at points where the ranks agree (request creation in
``process_input_requests`` order; ``_process_hicache_events`` after the TP-wide HiCache drain),
and both return at once unless the scheduler's tree runs ScaleSim's strategy.
"""

from __future__ import annotations

from typing import Any

from scalesim.sglang.copy_kernels import copy_counts
from scalesim.sglang.eviction import runtime_of
from scalesim.sglang.guard import guarded
from scalesim.sglang.lora import adapter_policy_of, observe_adapter
from scalesim.sglang.lora_prefetch import lora_prefetch_step
from scalesim.sglang.metrics import publish_metrics
from scalesim.sglang.prefetch import prefetch_step
from scalesim.sglang.queue import order_waiting_queue
from scalesim.sglang.requests import observe_request


@guarded("create_generation_req")
def after_create_generation_req(
    req: Any, scheduler: Any, recv_req: Any, *args: Any, **kwargs: Any
) -> None:
    """AFTER ``Scheduler._create_generation_req``: tag the request with its owner key and feed
    its clock and ``next_call`` to the runtime; a request with an adapter tells which adapter
    its agent uses."""
    observe_request(scheduler, req, recv_req)
    observe_adapter(scheduler, req)


@guarded("process_hicache_events")
def after_process_hicache_events(result: Any, scheduler: Any, *args: Any, **kwargs: Any) -> None:
    """AFTER ``Scheduler._process_hicache_events`` (once per scheduler iteration): queue
    load-backs and adapter loads for the nearest agents, then publish the runtime's metrics
    (and the live copy counts, also without the ``scalesim`` radix policy)."""
    runtime = runtime_of(getattr(scheduler, "tree_cache", None))
    if runtime is None:  # no distances: only the live copies have something to report
        publish_metrics(scheduler, None, None, copy_counts())
        return
    prefetch_step(scheduler, runtime)
    _adapter_prefetch(scheduler, runtime)
    policy = adapter_policy_of(scheduler)
    adapters = None if policy is None else policy.slots.counters
    publish_metrics(scheduler, runtime, adapters, copy_counts())


@guarded("adapter_prefetch")
def _adapter_prefetch(scheduler: Any, runtime: Any) -> None:
    """Adapter prefetch, contained on its own: a failure leaves KV prefetch and metrics on."""
    lora_prefetch_step(scheduler, runtime)


@guarded("calc_priority")
def after_calc_priority(
    result: Any, policy: Any, waiting_queue: list[Any], *args: Any, **kwargs: Any
) -> None:
    """AFTER ``SchedulePolicy.calc_priority``: with ``queue_order: lag``, the request that lags
    its simulation most goes first (SGLang's order among equals)."""
    order_waiting_queue(getattr(policy, "tree_cache", None), waiting_queue)
