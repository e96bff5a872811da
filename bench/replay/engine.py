"""Replays one trace under one policy and prices it with the cost model.

Who calls it: ``replay_policies`` (below) for the CLI and the sweep. One
:class:`PolicyRun` owns a real SGLang radix cache (device tier), the host tier, the
LoRA slots and a discrete-event model of one GPU: ready calls are admitted first come
first served while the batch and the KV pool allow, admitted calls prefill (recomputed
tokens at prefill speed, host hits at host-to-device speed, blocking adapter loads at
load time) and then decode together, one step per output token.

Invariants: for every call gpu_hit + host_hit + recomputed = prompt tokens; the same
trace and config give the same results (no wall clock, no hash order).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tqdm import tqdm

from scalesim.distance import Source
from scalesim.memory.planner import MemoryPlanner
from scalesim.memory.resource import Resource, Tier

from ..trace import Trace
from .host import HostTier
from .issue import IssueGate
from .lora import LoraSlots
from .policies import INFINITE, ReplayClock, ScaleSimRanking, make_ranking
from .prompts import Prompt, PromptBook
from .radix import Admission, RadixTier
from .result import PolicyResult, ReplayConfig


@dataclass
class _Running:
    index: int
    admission: Admission
    left_steps: int


class PolicyRun:
    """One policy over one trace; call :meth:`run` once."""

    def __init__(self, book: PromptBook, trace: Trace, policy: str, config: ReplayConfig):
        self.book, self.config, self.cost = book, config, config.cost
        self.clock = ReplayClock()
        self.ranking = make_ranking(policy, book, self.clock)
        working = book.working_set_tokens()
        unbounded = book.total_distinct_tokens() + max(len(p.tokens) for p in book.prompts)
        capacity = unbounded if policy == INFINITE else max(1, int(config.memory_ratio * working))
        host_capacity = unbounded if policy == INFINITE else int(config.host_ratio * working)
        self.radix = RadixTier(
            capacity, strategy=self.ranking.tree_strategy(), on_path=self.ranking.on_insert
        )
        self.host = HostTier(host_capacity, ranking=self.ranking)
        self.lora = LoraSlots(config.lora_slots, ranking=self.ranking)
        self.gate = IssueGate(book.calls, mode=config.mode, window_steps=config.ooo_window_steps)
        self.hints = sorted(trace.hints, key=lambda hint: hint.step)
        self._hint_pos = 0
        self._last_call: dict[str, int] = {}
        self._ready_at: dict[str, float] = {}  # agent -> when its prefetched KV has landed
        self.now_s = self.copy_free_s = self._last_step_s = 0.0
        self._seq = 0.0
        self.counts = [0, 0, 0, 0, 0, 0]  # prompt, gpu, host, recomputed, h2d bytes, loads

    def run(self, *, progress: bool = False) -> PolicyResult:
        """Replay every call; returns the totals and the modelled makespan."""
        waiting: list[int] = []
        running: list[_Running] = []
        bar = tqdm(total=len(self.book.calls), file=sys.stderr, disable=not progress, leave=False)
        while True:
            waiting.extend(self._newly_ready())
            prefill_s = self._admit(waiting, running)
            if not running:
                if not waiting:
                    break
                raise RuntimeError(f"call {self.book.calls[waiting[0]].id} never fits the KV pool")
            left = min(item.left_steps for item in running)
            step_s = prefill_s + left * self.cost.decode_step_s(len(running))
            self.now_s += step_s
            self._last_step_s = step_s
            for item in [item for item in running if item.left_steps == left]:
                running.remove(item)
                self._finish(item)
                bar.update(1)
            for item in running:
                item.left_steps -= left
        bar.close()
        prompt, gpu, host, recomputed, h2d, loads = self.counts
        return PolicyResult(prompt, gpu, host, recomputed, h2d, loads, self.now_s)

    def _newly_ready(self) -> list[int]:
        ready = self.gate.ready()
        if ready:
            self._advance(float(self.gate.current_step))
        return ready

    def _admit(self, waiting: list[int], running: list[_Running]) -> float:
        prefill_s = 0.0
        while waiting and len(running) < self.cost.max_batch:
            cost_s = self._start(waiting[0])
            if cost_s is None:
                break
            admission, seconds = cost_s
            index = waiting.pop(0)
            running.append(_Running(index, admission, max(1, self.book.calls[index].output_len)))
            prefill_s += seconds
        return prefill_s

    def _start(self, index: int) -> tuple[Admission, float] | None:
        call, prompt = self.book.calls[index], self.book.prompts[index]
        self.clock.call_index = index
        if call.lora is not None and not self.lora.resident(call.lora) and not self.lora.can_load():
            return None
        admission = self.radix.admit(prompt.tokens, index)
        if admission is None:
            return None
        seconds = max(0.0, self._ready_at.pop(call.agent, 0.0) - self.now_s)
        seconds += self._account(index, prompt, admission.gpu_hit)
        if call.lora is not None:
            if not self.lora.resident(call.lora):
                self.lora.load(call.lora, agent=call.agent, now=self._tick())
                self.counts[5] += 1
                seconds += self.cost.adapter_load_s
            self.lora.acquire(call.lora, now=self._tick())
        self._last_call[call.agent] = index
        return admission, seconds

    def _account(self, index: int, prompt: Prompt, gpu_hit: int) -> float:
        """Count one call's tokens and return its prefill and load time."""
        host_hit = self.host.hit(prompt, gpu_hit)
        total = self.book.calls[index].prompt_tokens
        gpu_real = self.book.real_tokens(index, gpu_hit)
        host_real = self.book.real_tokens(index, gpu_hit + host_hit) - gpu_real
        recomputed = total - gpu_real - host_real
        self.host.write_through(prompt, agent=self.book.calls[index].agent, now=self._tick())
        h2d = host_real * self.cost.kv_bytes_per_token
        for slot, value in enumerate((total, gpu_real, host_real, recomputed, h2d), start=0):
            self.counts[slot] += value
        return self.cost.prefill_s(recomputed) + self.cost.h2d_s(h2d)

    def _finish(self, item: _Running) -> None:
        self.radix.release(item.admission)
        call = self.book.calls[item.index]
        if call.lora is not None:
            self.lora.release(call.lora)
        self.gate.complete(item.index)

    def _tick(self) -> float:
        self._seq += 1.0
        return self._seq

    def _advance(self, step: float) -> None:
        """Move the logical clock to ``step``: feed due hints, then prefetch (scalesim)."""
        self.clock.step = max(self.clock.step, step)
        if not isinstance(self.ranking, ScaleSimRanking):
            return
        table = self.ranking.table
        while self._hint_pos < len(self.hints) and self.hints[self._hint_pos].step <= step:
            hint = self.hints[self._hint_pos]
            distance = None if hint.next_step is None else float(hint.next_step - hint.step)
            table.update(hint.agent, distance, now=float(hint.step), source=Source.HINT)
            self._hint_pos += 1
        self._prefetch(table_planner=MemoryPlanner(table))

    def _prefetch(self, *, table_planner: MemoryPlanner) -> None:
        """Load back, ahead of need, the host-resident prefixes of the nearest agents."""
        candidates: dict[str, tuple[Prompt, int, int]] = {}
        for agent, index in self._last_call.items():
            lookup = table_planner.table.lookup(agent, now=self.clock.step)
            if lookup.distance is None or lookup.distance > self.config.prefetch_window_steps:
                continue
            prompt = self.book.prompts[index]
            stable = prompt.ends[-2] if len(prompt.ends) > 1 else 0
            gpu = self.radix.match(prompt.tokens[:stable])
            host = self.host.hit(prompt, gpu) if gpu < stable else 0
            end = min(stable, gpu + host)
            if end > gpu:
                candidates[agent] = (prompt, index, end)
        budget = int(self.cost.h2d_bytes_per_s * max(self._last_step_s, self.cost.decode_base_s))
        resources = [
            Resource(agent, (agent,), self._prefetch_bytes(*item), Tier.HOST, 0.0)
            for agent, item in candidates.items()
        ]
        plan = table_planner.prefetch_plan(
            resources,
            now=self.clock.step,
            window=self.config.prefetch_window_steps,
            budget_bytes=budget,
            device_free_bytes=budget,
        )
        for agent in plan.fetch:
            self._load_ahead(agent, *candidates[agent])

    def _prefetch_bytes(self, prompt: Prompt, index: int, end: int) -> int:
        gpu = self.radix.match(prompt.tokens[:end])
        moved = self.book.real_tokens(index, end) - self.book.real_tokens(index, gpu)
        return moved * self.cost.kv_bytes_per_token

    def _load_ahead(self, agent: str, prompt: Prompt, index: int, end: int) -> None:
        n_bytes = self._prefetch_bytes(prompt, index, end)
        admission = self.radix.admit(prompt.tokens[:end], index)
        if admission is None:
            return
        self.radix.release(admission)
        self.counts[4] += n_bytes
        self.copy_free_s = max(self.copy_free_s, self.now_s) + self.cost.h2d_s(n_bytes)
        self._ready_at[agent] = self.copy_free_s
        call = self.book.calls[index]
        if call.lora is not None and not self.lora.resident(call.lora) and self.lora.can_load():
            self.lora.load(call.lora, agent=agent, now=self._tick())


def replay_policies(
    trace: Trace, policies: list[str], config: ReplayConfig, *, progress: bool = False
) -> dict[str, PolicyResult]:
    """Replay ``trace`` once per policy (same prompts, same config)."""
    book = PromptBook(trace, token_scale=config.token_scale)
    return {
        policy: PolicyRun(book, trace, policy, config).run(progress=progress) for policy in policies
    }
