"""Host-tier prefetch in the live server: queue load-backs of the nearest agents' prefixes.

Who calls it: the AFTER hook on ``Scheduler._process_hicache_events`` (``scalesim.patches``),
once per scheduler iteration, after the TP-wide HiCache drain, so every rank decides alike.
The runtime chooses (:meth:`~scalesim.runtime.ScaleSimRuntime.plan_prefetch`: nearest first,
within the step's token budget, making room only by evicting device state whose owners call
strictly later); this module only measures the tree and calls SGLang's own
``UnifiedRadixCache.load_back``, leaving the copy queued for the next prefill batch to start
(never ``ready_to_load_host_cache`` here: a batch without loads of its own would read KV that
has not arrived).

Invariants: a prefetch never fails or delays a request beyond stock behaviour: a prefix the
request reaches first is no longer host-only (nothing to do), a load-back SGLang refuses (memory
short, below its threshold) is counted as a failure and dropped, and any error is contained by
the hook's guard. A queued load-back holds its device memory locked until a prefill batch starts
the copy (the whole path, device ancestors included), so prefetch locks only what leaves room
for the waiting requests and for the largest request seen so far (whole prompt plus output):
otherwise a pending load could keep the next request from being admitted, and with no batch to
start the load, the server could stall. Planning unit: one token (``size_bytes`` of the planner
records = tokens).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from scalesim.memory.resource import Resource, Tier
from scalesim.runtime import ScaleSimRuntime
from scalesim.sglang.tree import evictable_branches

#: Scheduler attribute: the most tokens one request could take, over the requests seen so far
#: (set by the request hook; identical on every tensor-parallel rank).
LARGEST_REQUEST_ATTR = "scalesim_largest_request_tokens"


class _HostPrefix(NamedTuple):
    owner: str
    end: Any  # the owner's path end node (evicted, backed up)
    n_tokens: int  # host-only tokens on the path


def prefetch_step(scheduler: Any, runtime: ScaleSimRuntime) -> None:
    """Plan and queue this step's prefetches (no-op with prefetch off or without a host tier)."""
    cache: Any = scheduler.tree_cache
    if not runtime.config.prefetch:
        return
    if not getattr(scheduler, "enable_hierarchical_cache", False):
        return
    free_tokens = int(cache.token_to_kv_pool_allocator.available_size())
    headroom = _admission_headroom(scheduler, free_tokens + int(cache.evictable_size()))
    if headroom <= 0:
        return
    candidates = _host_prefixes(runtime, min_tokens=max(1, int(cache.load_back_threshold)))
    if not candidates:
        return
    resources = [
        Resource(
            item.owner, (item.owner,), item.n_tokens, Tier.HOST, float(item.end.last_access_time)
        )
        for item in candidates.values()
    ]
    if sum(item.n_tokens for item in candidates.values()) > free_tokens:
        resources += _device_branches(cache, runtime)
    budget = min(runtime.config.prefetch_budget_tokens, headroom)
    plan = runtime.plan_prefetch(resources, free_bytes=free_tokens, budget_bytes=budget)
    locked = 0
    for owner in plan.fetch:
        item = candidates[owner]
        locked += _path_tokens(item.end)  # load_back pins the whole path, not only its fetch
        if locked > headroom:
            break
        try:
            loaded = cache.load_back(item.end.id, mem_quota=None, req=None)
        except Exception:
            runtime.counters.kv_prefetch_failures += 1
            raise  # the hook's guard logs it once; the rest of this step's plan is dropped
        if loaded:
            runtime.counters.kv_prefetch_tokens += item.n_tokens
        else:
            runtime.counters.kv_prefetch_failures += 1


def _admission_headroom(scheduler: Any, room_tokens: int) -> int:
    """Tokens a prefetch may lock now: the device room (free plus evictable) less the larger of
    what the waiting requests may need and the largest request seen so far (whole prompt plus
    ``max_new_tokens``, an upper bound): whichever request comes next still fits, so a prefill
    batch always forms and starts the queued load."""
    waiting = list(getattr(scheduler, "waiting_queue", None) or ())
    need = sum(request_tokens(req) for req in waiting)
    largest = int(getattr(scheduler, LARGEST_REQUEST_ATTR, 0))
    return room_tokens - max(need, largest)


def request_tokens(req: Any) -> int:
    """The most device tokens ``req`` can take: its prompt and every output token."""
    return len(req.origin_input_ids) + int(req.sampling_params.max_new_tokens or 0)


def _host_prefixes(runtime: ScaleSimRuntime, *, min_tokens: int) -> dict[str, _HostPrefix]:
    """Due owners whose path ends in host-only nodes that can all be loaded back."""
    found: dict[str, _HostPrefix] = {}
    for owner in runtime.due_owners():
        end: Any = runtime.owners.end_of(owner)
        if end is None or not end.evicted:
            continue
        n_tokens = _host_only_tokens(end)
        if n_tokens is not None and n_tokens >= min_tokens:
            found[owner] = _HostPrefix(owner, end, n_tokens)
    return found


def _path_tokens(end: Any) -> int:
    """Tokens from the root to ``end``: what ``load_back`` keeps locked until its copy starts
    (shared ancestors counted once per path: an upper bound)."""
    n_tokens, node = 0, end
    while node.parent is not None:
        n_tokens += len(node.key)
        node = node.parent
    return n_tokens


def _host_only_tokens(end: Any) -> int | None:
    """Tokens on ``end``'s path that are evicted from the device but backed up on the host;
    None if a segment is gone from both tiers (the request will recompute it anyway)."""
    n_tokens, node = 0, end
    while node.parent is not None and node.evicted:
        if not node.backuped:
            return None
        n_tokens += len(node.key)
        node = node.parent
    return n_tokens


def _device_branches(cache: Any, runtime: ScaleSimRuntime) -> list[Resource]:
    """Every evictable device branch as a planner record, owned as the runtime sees it."""
    return [
        Resource(
            f"node:{node.id}",
            tuple(runtime.owners.of(node)),
            n_tokens,
            Tier.DEVICE,
            float(node.last_access_time),
        )
        for node, n_tokens in evictable_branches(cache.tree_core)
    ]
