"""ScaleSim's hint feed and prefetch: load host-resident prefixes back ahead of need.

Who calls it: the replay engine, for the ``scalesim`` policy only, each time the
logical clock moves to a new step. Due hints go into the distance table; agents whose
hinted next step falls within the prefetch window are the candidates (found through
per-step buckets, not by scanning every agent); the core's :class:`MemoryPlanner`
chooses what to fetch within the step's host-to-device byte budget and under its
guard: room is made only by evicting device branches (a leaf and the single-child
ancestors it frees) whose nearest owner calls strictly later than the fetched prefix's.
The tree then evicts that many tokens with the same ScaleSim ranking, so it takes the
same (farthest) leaves first.

Invariants: a prefetch never evicts from the device anything the planner did not
clear; bytes moved are counted once, in real tokens.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from scalesim.distance import Source
from scalesim.memory.planner import MemoryPlanner
from scalesim.memory.resource import Resource, Tier

from ..costmodel import CostModel
from ..trace import Hint
from .host import HostTier
from .policies import ScaleSimRanking
from .prompts import Prompt, PromptBook
from .radix import RadixTier


@dataclass(frozen=True)
class _Candidate:
    prompt: Prompt
    index: int  # the agent's last call: its prefix is what the next call reuses
    end: int  # replay-token end of the prefix to fetch (GPU hit + host hit)


class Prefetcher:
    """Feeds trace hints to ScaleSim's table and prefetches for the nearest agents."""

    def __init__(
        self,
        book: PromptBook,
        hints: Sequence[Hint],
        *,
        ranking: ScaleSimRanking,
        tiers: tuple[RadixTier, HostTier],
        window_steps: float,
    ) -> None:
        self.book, self.ranking, self.window = book, ranking, window_steps
        self.radix, self.host = tiers
        self.planner = MemoryPlanner(ranking.table)
        self.hints = sorted(hints, key=lambda hint: hint.step)
        self._hint_pos = 0
        self._due: defaultdict[int, set[str]] = defaultdict(set)  # next step -> agents
        self.last_call: dict[str, int] = {}

    def feed(self, step: float) -> None:
        """Apply every hint issued at or before ``step``."""
        table = self.ranking.table
        while self._hint_pos < len(self.hints) and self.hints[self._hint_pos].step <= step:
            hint = self.hints[self._hint_pos]
            distance = None if hint.next_step is None else float(hint.next_step - hint.step)
            table.update(hint.agent, distance, now=float(hint.step), source=Source.HINT)
            if hint.next_step is not None:
                self._due[hint.next_step].add(hint.agent)
            self._hint_pos += 1

    def plan(self, step: float, *, cost: CostModel, budget_bytes: int) -> dict[str, int]:
        """Fetch what the planner allows; returns agent -> real bytes moved for it."""
        candidates = self._candidates(step)
        if not candidates:
            return {}
        unit = self.book.scale * cost.kv_bytes_per_token  # planning bytes per replay token
        host = [
            Resource(agent, (agent,), (item.end - self._gpu(item)) * unit, Tier.HOST, 0.0)
            for agent, item in candidates.items()
        ]
        free_bytes = self.radix.free_tokens() * unit
        short = sum(resource.size_bytes for resource in host) > free_bytes
        device = self._device_resources(unit) if short else []
        plan = self.planner.prefetch_plan(
            [*host, *device],
            now=step,
            window=self.window,
            budget_bytes=budget_bytes,
            device_free_bytes=free_bytes,
        )
        if plan.evict_bytes:
            self.radix.evict(-(-plan.evict_bytes // unit))
        moved: dict[str, int] = {}
        for agent in plan.fetch:
            item = candidates[agent]
            real = self.book.real_tokens(item.index, item.end) - self.book.real_tokens(
                item.index, self._gpu(item)
            )
            if self.radix.load(item.prompt.tokens[: item.end], item.index):
                moved[agent] = real * cost.kv_bytes_per_token
        return moved

    def _gpu(self, item: _Candidate) -> int:
        return self.radix.match(item.prompt.tokens[: item.end])

    def _candidates(self, step: float) -> dict[str, _Candidate]:
        """Agents due within the window whose stable prefix is partly on the host only."""
        first = int(step)
        for stale in [due for due in self._due if due < first]:
            del self._due[stale]
        due_steps = range(first, first + int(self.window) + 1)
        agents = sorted({agent for due in due_steps for agent in self._due.get(due, ())})
        table = self.ranking.table
        out: dict[str, _Candidate] = {}
        for agent in agents:
            index = self.last_call.get(agent)
            distance = table.lookup(agent, now=step).distance
            if index is None or distance is None or distance > self.window:
                continue
            prompt = self.book.prompts[index]
            stable = prompt.stable_end
            gpu = self.radix.match(prompt.tokens[:stable])
            host = self.host.hit(prompt, gpu) if gpu < stable else 0
            if min(stable, gpu + host) > gpu:
                out[agent] = _Candidate(prompt, index, min(stable, gpu + host))
        return out

    def _device_resources(self, unit: int) -> list[Resource]:
        """Every evictable device branch as a planner resource, owned as ScaleSim sees it."""
        owners = self.ranking.owners
        return [
            Resource(
                f"node-{node.id}",
                tuple(owners.of(node)),
                n_tokens * unit,
                Tier.DEVICE,
                float(node.last_access_time),
            )
            for node, n_tokens in self.radix.evictable_branches()
        ]
