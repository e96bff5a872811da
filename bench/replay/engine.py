"""Replays one trace under one policy and prices it with the cost model.

Who calls it: ``replay_policies`` (below) for the CLI and the sweep. One
:class:`PolicyRun` owns a real SGLang radix cache (device tier), the host tier, the
LoRA slots and a discrete-event model of one GPU: ready calls are admitted first come
first served while the batch and the KV pool allow, admitted calls prefill (recomputed
tokens at prefill speed, host hits at host-to-device speed, blocking adapter loads at
load time) and then decode together, one step per output token. The engine tells the
policy's ranking when the logical clock moves and which call it admits; for ``scalesim`` it
also tells the prefetcher each admitted call and applies the fetches it returns.

Invariants: for every call gpu_hit + host_hit + recomputed = prompt tokens; the same
trace and config give the same results (no wall clock, no hash order).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from tqdm import tqdm

from scalesim.runtime import split_owner

from ..trace import Trace
from .host import HostTier
from .issue import IssueGate
from .lora import LoraSlots
from .policies import INFINITE, ScaleSimRanking, make_ranking
from .prefetch import Prefetcher
from .prompts import Prompt, PromptBook
from .radix import Admission, RadixTier
from .result import PolicyResult, ReplayConfig, ReplayCounters


@dataclass
class _Running:
    index: int
    admission: Admission
    left_steps: int


@dataclass(frozen=True)
class _Started:
    """A call admitted to the device tier, and the seconds before it can decode."""

    admission: Admission
    prefill_s: float  # waiting for its prefetch, loading its adapter, prefill itself


class PolicyRun:
    """One policy over one trace; call :meth:`run` once."""

    def __init__(self, book: PromptBook, trace: Trace, policy: str, config: ReplayConfig):
        self.book, self.config, self.cost = book, config, config.cost
        self.ranking = make_ranking(
            policy, book, hints=trace.hints, runtime_config=config.runtime_config()
        )
        capacity, host_capacity = book.capacities(
            None if policy == INFINITE else config.memory_ratio, host_ratio=config.host_ratio
        )
        self.radix = RadixTier(
            capacity,
            strategy=self.ranking.tree_strategy(),
            on_path=self.ranking.on_insert,
            headroom_tokens=int(config.evict_headroom * capacity),
        )
        self.host = HostTier(host_capacity, ranking=self.ranking, device=self.radix.resident)
        self.lora = LoraSlots(config.lora_slots, ranking=self.ranking)
        self.gate = IssueGate(book.calls, mode=config.mode, window_steps=config.ooo_window_steps)
        self.prefetcher = (
            Prefetcher(
                book,
                runtime=self.ranking.runtime,
                owned=self.ranking.owned,
                tiers=(self.radix, self.host),
                cost=self.cost,
            )
            if isinstance(self.ranking, ScaleSimRanking) and host_capacity > 0
            else None  # nothing to load back without a host tier
        )
        self._ready_at: dict[str, float] = {}  # agent -> when its prefetched KV has landed
        self.now_s = self.copy_free_s = self._last_step_s = 0.0
        self._seq = 0.0
        self.counters = ReplayCounters()

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
        return self.counters.result(makespan_s=self.now_s)

    def _newly_ready(self) -> list[int]:
        ready = self.gate.ready()
        if ready:
            self._advance(float(self.gate.current_step))
        for index in ready:
            self.ranking.arrive(index)
        return ready

    def _admit(self, waiting: list[int], running: list[_Running]) -> float:
        prefill_s = 0.0
        if isinstance(self.ranking, ScaleSimRanking):
            waiting[:] = self.ranking.admission_order(waiting)
        while waiting and len(running) < self.cost.max_batch:
            started = self._start(waiting[0])
            if started is None:
                break
            index = waiting.pop(0)
            output_steps = max(1, self.book.calls[index].output_len)
            running.append(_Running(index, started.admission, output_steps))
            prefill_s += started.prefill_s
        return prefill_s

    def _start(self, index: int) -> _Started | None:
        call, prompt = self.book.calls[index], self.book.prompts[index]
        self.ranking.start_call(index)
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
                self.counters.blocking_adapter_loads += 1
                seconds += self.cost.adapter_load_s
            self.lora.acquire(call.lora, now=self._tick())
        if self.prefetcher is not None:
            self.prefetcher.record_call(call.agent, index)
        return _Started(admission, seconds)

    def _account(self, index: int, prompt: Prompt, gpu_hit: int) -> float:
        """Count one call's tokens and return its prefill and load time."""
        host_hit = self.host.hit(prompt, gpu_hit)
        total = self.book.calls[index].prompt_tokens
        gpu_real = self.book.real_tokens(index, gpu_hit)
        host_real = self.book.real_tokens(index, gpu_hit + host_hit) - gpu_real
        recomputed = total - gpu_real - host_real
        self.host.write_through(prompt, now=self._tick(), owner=self._owner(index))
        h2d = host_real * self.cost.kv_bytes_per_token
        counters = self.counters
        counters.prompt_tokens += total
        counters.gpu_hit_tokens += gpu_real
        counters.host_hit_tokens += host_real
        counters.recomputed_tokens += recomputed
        counters.h2d_bytes += h2d
        return self.cost.prefill_s(recomputed) + self.cost.h2d_s(h2d)

    def _owner(self, index: int) -> tuple[str, int] | None:
        """(agent, replay tokens it owns) of call ``index`` for ScaleSim, which ranks by owners."""
        if not isinstance(self.ranking, ScaleSimRanking):
            return None
        agent = self.book.calls[index].agent
        return agent, self.ranking.owned[agent]

    def _finish(self, item: _Running) -> None:
        self.radix.release(item.admission)
        call = self.book.calls[item.index]
        if call.lora is not None:
            self.lora.release(call.lora)
        self.gate.complete(item.index)
        self.ranking.finish(item.index)

    def _tick(self) -> float:
        self._seq += 1.0
        return self._seq

    def _advance(self, step: float) -> None:
        """Move the logical clock to ``step`` (the ranking feeds due hints), then prefetch."""
        self.ranking.advance(step)
        budget_s = max(self._last_step_s, self.cost.decode_base_s)
        if self.prefetcher is not None:
            budget = int(self.cost.h2d_bytes_per_s * budget_s)
            for fetch in self.prefetcher.plan(budget_bytes=budget):
                self.counters.h2d_bytes += fetch.n_bytes
                self._copy(fetch.agent, self.cost.h2d_s(fetch.n_bytes))
        if isinstance(self.ranking, ScaleSimRanking) and self.lora.n_slots is not None:
            loads = int(budget_s / self.cost.adapter_load_s)
            self._prefetch_adapters(self.ranking, max_loads=loads)

    def _prefetch_adapters(self, ranking: ScaleSimRanking, *, max_loads: int) -> None:
        """Adapters of due agents into free or farther slots, as many as the step's time can
        copy; the decision is the runtime's (``AdapterSlots.prefetch_plan``), as live."""
        due = ranking.runtime.due_owners()
        plan = ranking.adapters.prefetch_plan(due, self.lora.view(), max_loads=max_loads)
        for adapter in plan:
            owner = min(ranking.adapters.owners_of(adapter))
            agent = split_owner(owner)[1]
            self.lora.load(adapter, agent=agent, now=self._tick())
            self.counters.prefetch_adapter_loads += 1
            self._copy(agent, self.cost.adapter_load_s)

    def _copy(self, agent: str, seconds: float) -> None:
        """Queue ``seconds`` of copying for ``agent`` on the copy engine; its call waits for it."""
        self.copy_free_s = max(self.copy_free_s, self.now_s) + seconds
        self._ready_at[agent] = self.copy_free_s


def replay_policies(
    trace: Trace, policies: list[str], config: ReplayConfig, *, progress: bool = False
) -> dict[str, PolicyResult]:
    """Replay ``trace`` once per policy (same prompts, same config)."""
    book = PromptBook(trace, token_scale=config.token_scale)
    return {
        policy: PolicyRun(book, trace, policy, config).run(progress=progress) for policy in policies
    }
