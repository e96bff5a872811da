"""The scheduler's side of the control channel: apply updates, drop namespaces, snapshot state.

Who calls it: the scheduler's request dispatcher, through the entries the AFTER hook on
``Scheduler.init_request_dispatcher`` adds (``scalesim.patches.control``); adapter questions are
answered by ``scalesim.sglang.adapter_control``. Every
tensor-parallel rank runs the same handler at the same point of the request stream (control
messages ride the tokenizer->scheduler socket and its broadcast), so every rank's runtime stays
identical; only rank 0's reply leaves the process (SGLang's ``send_to_tokenizer``).

Invariants: a handler never raises into the scheduler loop: a refusal the runtime decides
(409 stale version or clock, 404 unknown namespace) and any internal error become a
:class:`ScaleSimControlReqOutput` with a status; a scheduler whose tree does not run the
``scalesim`` policy answers 503. The snapshot only reads the tree.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from scalesim.runtime import ContractError, DistanceUpdate, ScaleSimRuntime, owner_key
from scalesim.runtime.adapters import AdapterCounters
from scalesim.sglang.adapter_control import declare_adapters, host_adapter_victim
from scalesim.sglang.control_messages import (
    ScaleSimAdaptersReqInput,
    ScaleSimControlReqOutput,
    ScaleSimDistancesReqInput,
    ScaleSimDropNamespaceReqInput,
    ScaleSimHostAdapterVictimReqInput,
    ScaleSimStateReqInput,
    error_reply,
)
from scalesim.sglang.eviction import runtime_of
from scalesim.sglang.lora import adapter_policy_of

logger = logging.getLogger(__name__)

NOT_SCALESIM = (
    "ScaleSim's control endpoints need the scalesim eviction policy: start the server with "
    "--radix-eviction-policy scalesim"
)

#: (scheduler, runtime, message) -> reply.
Handler = Callable[[Any, ScaleSimRuntime, Any], ScaleSimControlReqOutput]


@dataclass(frozen=True)
class TierTokens:
    """Tokens of one memory tier, by the nearest owner's distance class."""

    near: int = 0  # the nearest owner calls within the prefetch window
    far: int = 0  # every owner with a known distance calls later
    unknown: int = 0  # no owner with a known distance (or no owner at all)


@dataclass(frozen=True)
class HeldTokens:
    """What the radix tree holds: device and host tokens, and the nodes walked with owners."""

    device: TierTokens
    host: TierTokens
    owned_nodes: int


def dispatch_pairs(scheduler: Any) -> list[tuple[type, Callable[[Any], ScaleSimControlReqOutput]]]:
    """(message type, handler) pairs for the scheduler's ``TypeBasedDispatcher``."""
    handlers: tuple[tuple[type, Handler], ...] = (
        (ScaleSimDistancesReqInput, apply_distances),
        (ScaleSimStateReqInput, snapshot),
        (ScaleSimDropNamespaceReqInput, drop_namespace),
        (ScaleSimAdaptersReqInput, declare_adapters),
        (ScaleSimHostAdapterVictimReqInput, host_adapter_victim),
    )
    return [
        (message_type, _answering(scheduler, handler, name=message_type.__name__))
        for message_type, handler in handlers
    ]


def _answering(
    scheduler: Any, handler: Handler, *, name: str
) -> Callable[[Any], ScaleSimControlReqOutput]:
    def answer(message: Any) -> ScaleSimControlReqOutput:
        runtime = runtime_of(getattr(scheduler, "tree_cache", None))
        if runtime is None:
            return error_reply(503, NOT_SCALESIM)
        try:
            reply = handler(scheduler, runtime, message)
            _add_adapter_counters(scheduler, reply)
            return reply
        except ContractError as err:
            return error_reply(err.status, str(err))
        except Exception:  # the scheduler loop must survive any ScaleSim failure
            logger.exception("scalesim control request %s failed", name)
            return error_reply(500, f"ScaleSim failed on {name}; see the server log")

    return answer


def _add_adapter_counters(scheduler: Any, reply: ScaleSimControlReqOutput) -> None:
    """The adapter slots' counters beside the runtime's (zero without the LoRA policy)."""
    counters = reply.body.get("counters") if isinstance(reply.body, dict) else None
    if isinstance(counters, dict):
        policy = adapter_policy_of(scheduler)
        adapters = AdapterCounters() if policy is None else policy.slots.counters
        counters.update(dataclasses.asdict(adapters))


def apply_distances(
    scheduler: Any, runtime: ScaleSimRuntime, message: ScaleSimDistancesReqInput
) -> ScaleSimControlReqOutput:
    """Apply a checked distance update, all or nothing (409 from the runtime: nothing applied)."""
    update = DistanceUpdate(
        namespace=message.namespace,
        clock=message.clock,
        version=message.version,
        next_call=dict(message.next_call),
        unknown=tuple(message.unknown),
    )
    result = runtime.apply(update)
    body = {
        "namespace": result.namespace,
        "applied": result.applied,
        "version": result.version,
        "clock": result.clock,
    }
    return ScaleSimControlReqOutput(status=200, body=body)


def drop_namespace(
    scheduler: Any, runtime: ScaleSimRuntime, message: ScaleSimDropNamespaceReqInput
) -> ScaleSimControlReqOutput:
    """Forget a namespace (its agents rank as unknown, its adapter uses are forgotten); 404
    when it is not known."""
    dropped = runtime.drop_namespace(message.namespace)
    if dropped is None:
        return error_reply(404, f"unknown namespace {message.namespace!r}")
    policy = adapter_policy_of(scheduler)
    if policy is not None:
        policy.slots.drop_namespace(message.namespace)
    body = {"namespace": dropped.namespace, "agents": dropped.agents, "path_owners": dropped.owners}
    return ScaleSimControlReqOutput(status=200, body=body)


def snapshot(
    scheduler: Any, runtime: ScaleSimRuntime, message: ScaleSimStateReqInput
) -> ScaleSimControlReqOutput:
    """Namespaces, agents, ownership, tokens held by near/far/unknown agents, and counters.

    With a namespace, everything is restricted to it (404 when it is not known); the counters
    stay server-wide.
    """
    namespaces = runtime.namespaces()
    if message.namespace is not None:
        namespaces = [state for state in namespaces if state.name == message.namespace]
        if not namespaces:
            return error_reply(404, f"unknown namespace {message.namespace!r}")
    held = held_tokens(runtime, scheduler.tree_cache.tree_core, namespace=message.namespace)
    if message.namespace is None:
        owned_nodes, path_owners = runtime.owners.n_nodes, runtime.owners.n_owners
    else:
        prefix = owner_key(message.namespace, "")
        owned_nodes = held.owned_nodes
        path_owners = len(runtime.owners.owners_with_prefix(prefix))
    body = {
        "namespaces": [dataclasses.asdict(state) for state in namespaces],
        "agents": sum(state.agents for state in namespaces),
        "path_owners": path_owners,
        "owned_nodes": owned_nodes,
        "tokens": {
            "device": dataclasses.asdict(held.device),
            "host": dataclasses.asdict(held.host),
        },
        "counters": dataclasses.asdict(runtime.counters),
    }
    return ScaleSimControlReqOutput(status=200, body=body)


def held_tokens(runtime: ScaleSimRuntime, tree_core: Any, *, namespace: str | None) -> HeldTokens:
    """Walk the radix tree once and class each node's tokens by its owners' distance.

    A node's device tokens count while it is not evicted, its host tokens while it is backed
    up. With ``namespace``, only that namespace's owners count and nodes it does not own are
    skipped. Costs one pass over the tree (an admin request, not a per-batch one).
    """
    prefix = None if namespace is None else owner_key(namespace, "")
    device = {"near": 0, "far": 0, "unknown": 0}
    host = {"near": 0, "far": 0, "unknown": 0}
    owned_nodes = 0
    for node in _descendants(tree_core.root_node):
        owners = list(runtime.owners.of(node))
        if prefix is not None:
            owners = [owner for owner in owners if owner.startswith(prefix)]
            if not owners:
                continue
        owned_nodes += bool(owners)
        near = runtime.is_near(owners)
        distance_class = "unknown" if near is None else "near" if near else "far"
        n_tokens = len(node.key) if node.key is not None else 0
        if not node.evicted:
            device[distance_class] += n_tokens
        if node.backuped:
            host[distance_class] += n_tokens
    return HeldTokens(TierTokens(**device), TierTokens(**host), owned_nodes)


def _descendants(root: Any) -> Iterator[Any]:
    stack = list(root.children.values())
    while stack:
        node = stack.pop()
        stack.extend(node.children.values())
        yield node
