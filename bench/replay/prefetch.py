"""ScaleSim's prefetch in the replay: load host-resident prefixes back ahead of need.

Who calls it: the replay engine, for the ``scalesim`` policy only: :meth:`Prefetcher.record_call`
after each admitted call, :meth:`Prefetcher.plan` each time the logical clock moves (after the
ranking has fed the due hints to the runtime). The decisions are the runtime's: it names the
owners due within its prefetch window (``due_owners``) and its core planner chooses what to
fetch within the step's host-to-device byte budget and under its guard (``plan_prefetch``):
room is made only by evicting device branches (a leaf and the single-child ancestors it frees)
whose nearest owner calls strictly later than the fetched prefix's. This module only sizes the
candidates in replay terms (which part of the agent's last prompt that it owns, ``owned``, is
on the host and not on the device, and its bytes); the tree then evicts that many tokens with
the same ScaleSim ranking, so it takes the same (farthest) leaves first.

Invariants: a prefetch never evicts from the device anything the planner did not clear;
bytes moved are counted once, in real tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scalesim.memory.resource import Resource, Tier
from scalesim.runtime import ScaleSimRuntime, split_owner

from ..costmodel import CostModel
from .host import HostTier
from .prompts import Prompt, PromptBook
from .radix import RadixTier


@dataclass(frozen=True)
class Fetch:
    """One prefix loaded back to the device for ``agent``."""

    agent: str
    call_index: int  # the agent's last call, whose prompt prefix was loaded
    n_bytes: int  # real bytes moved host -> device


@dataclass(frozen=True)
class _Candidate:
    agent: str
    prompt: Prompt
    index: int  # the agent's last call: its prefix is what the next call reuses
    end: int  # replay-token end of the prefix to fetch (GPU hit + host hit)


class Prefetcher:
    """Prefetches, for the owners the runtime finds due, what the host holds of their prefix."""

    def __init__(
        self,
        book: PromptBook,
        *,
        runtime: ScaleSimRuntime,
        owned: Mapping[str, int],
        tiers: tuple[RadixTier, HostTier],
        cost: CostModel,
    ) -> None:
        self.book, self.runtime, self.cost = book, runtime, cost
        self.radix, self.host = tiers
        self.owned = owned
        self._last_call: dict[str, int] = {}  # agent -> index of its latest admitted call

    def record_call(self, agent: str, call_index: int) -> None:
        """``agent``'s call ``call_index`` was admitted: the part of its prompt the agent owns
        (``owned``) is what the next one is expected to reuse."""
        self._last_call[agent] = call_index

    def plan(self, *, budget_bytes: int) -> list[Fetch]:
        """Fetch what the runtime's planner allows within ``budget_bytes`` (planning bytes)."""
        candidates = self._candidates()
        if not candidates:
            return []
        unit = self.book.scale * self.cost.kv_bytes_per_token  # planning bytes per replay token
        host = [
            Resource(owner, (owner,), (item.end - self._gpu(item)) * unit, Tier.HOST, 0.0)
            for owner, item in candidates.items()
        ]
        free_bytes = self.radix.free_tokens() * unit
        short = sum(resource.size_bytes for resource in host) > free_bytes
        device = self._device_resources(unit) if short else []
        plan = self.runtime.plan_prefetch(
            [*host, *device], free_bytes=free_bytes, budget_bytes=budget_bytes
        )
        if plan.evict_bytes:
            self.radix.evict(-(-plan.evict_bytes // unit))
        fetched: list[Fetch] = []
        for owner in plan.fetch:
            item = candidates[owner]
            real = self.book.real_tokens(item.index, item.end) - self.book.real_tokens(
                item.index, self._gpu(item)
            )
            if self.radix.load(item.prompt.tokens[: item.end], item.index):
                fetched.append(Fetch(item.agent, item.index, real * self.cost.kv_bytes_per_token))
        return fetched

    def _gpu(self, item: _Candidate) -> int:
        return self.radix.resident(item.prompt.tokens[: item.end])

    def _candidates(self) -> dict[str, _Candidate]:
        """Due owners whose owned prefix is partly on the host only, by owner key.

        The tree is only read (``RadixTier.resident``), as the live prefetcher walks nodes
        without matching: probing with a match marked every due owner's device prefix used, so
        a prefetch that fetched nothing still reordered the tree's evictions (a host tier
        smaller than the device then cost ScaleSim recompute).
        """
        out: dict[str, _Candidate] = {}
        for owner in sorted(self.runtime.due_owners()):
            agent = split_owner(owner)[1]
            index = self._last_call.get(agent)
            if index is None:
                continue
            prompt = self.book.prompts[index]
            stable = self.owned[agent]
            gpu = self.radix.resident(prompt.tokens[:stable])
            host = self.host.hit(prompt, gpu) if gpu < stable else 0
            if min(stable, gpu + host) > gpu:
                out[owner] = _Candidate(agent, prompt, index, min(stable, gpu + host))
        return out

    def _device_resources(self, unit: int) -> list[Resource]:
        """Every evictable device branch as a planner resource, owned as the runtime sees it."""
        owners = self.runtime.owners
        return [
            Resource(
                f"node:{node.id}",
                tuple(owners.of(node)),
                n_tokens * unit,
                Tier.DEVICE,
                float(node.last_access_time),
            )
            for node, n_tokens in self.radix.evictable_branches()
        ]
