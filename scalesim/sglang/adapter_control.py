"""The scheduler's answers about adapters: declarations, and which adapter leaves host memory.

Who calls it: the scheduler's request dispatcher (``scalesim.sglang.state.dispatch_pairs``)
for ``POST /scalesim/v1/adapters`` and for the main process's LoRA registry, which asks which
adapter to unload when ``--max-loaded-loras`` is exceeded (``scalesim.sglang.lora_host``).
Both go to the scheduler's :class:`~scalesim.runtime.adapters.AdapterSlots`, the one registry
of agent -> adapter that also ranks the GPU slots, so both tiers rank adapters the same way.

Invariants: every tensor-parallel rank applies a declaration at the same point of the request
stream; a victim question only reads. A server without the ``scalesim`` LoRA policy answers
503 (the registry then keeps SGLang's LRU choice).
"""

from __future__ import annotations

from typing import Any

from scalesim.runtime import ScaleSimRuntime
from scalesim.sglang.control_messages import (
    ScaleSimAdaptersReqInput,
    ScaleSimControlReqOutput,
    ScaleSimHostAdapterVictimReqInput,
    error_reply,
)
from scalesim.sglang.lora import adapter_policy_of

NO_ADAPTER_POLICY = (
    "adapter declarations need ScaleSim's LoRA policy: start the server with adapters "
    "(--enable-lora) and --lora-eviction-policy scalesim (scalesim serve's default)"
)


def declare_adapters(
    scheduler: Any, runtime: ScaleSimRuntime, message: ScaleSimAdaptersReqInput
) -> ScaleSimControlReqOutput:
    """Record which adapter each named agent uses until its next request says otherwise."""
    policy = adapter_policy_of(scheduler)
    if policy is None:
        return error_reply(503, NO_ADAPTER_POLICY)
    policy.slots.declare(message.namespace, message.adapters)
    body = {"namespace": message.namespace, "declared": len(message.adapters)}
    return ScaleSimControlReqOutput(status=200, body=body)


def host_adapter_victim(
    scheduler: Any, runtime: ScaleSimRuntime, message: ScaleSimHostAdapterVictimReqInput
) -> ScaleSimControlReqOutput:
    """The candidate whose nearest owner calls latest (least recently used among equals)."""
    policy = adapter_policy_of(scheduler)
    if policy is None:
        return error_reply(503, NO_ADAPTER_POLICY)
    victim = policy.slots.host_victim(message.candidates)
    return ScaleSimControlReqOutput(status=200, body={"victim": victim})
