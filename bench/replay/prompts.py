"""Token keys, prefix chains and future uses of every call of a trace.

Who calls it: the replay engine builds one :class:`PromptBook` per trace and shares it
between policies. A *chain* is a run of leading segments (seg_1..seg_k) of a prompt;
equal chains are equal token prefixes, so chains name the reusable units of KV state.
With ``token_scale`` s > 1 each replay token stands for s real tokens (segment of L real
tokens -> ceil(L / s) replay tokens) to keep SGLang's per-token Python tree fast; counts
are mapped back to real tokens exactly, segment by segment.

Invariants: chain ids are dense ints interned in trace order; ``uses[c]`` lists the
call indices (trace order) whose prompt contains chain c, ascending.
"""

from __future__ import annotations

import bisect
from array import array
from dataclasses import dataclass

from ..trace import Call, Trace, segment_token

#: Replay token ids are not fed to a model, so a huge vocabulary avoids collisions.
_VOCAB = 1 << 62


@dataclass(frozen=True)
class Prompt:
    """One call's prompt as the replay sees it (token counts in replay tokens)."""

    tokens: array  # type: ignore[type-arg]
    chains: tuple[int, ...]  # chain id of each segment
    ends: tuple[int, ...]  # replay-token end of each segment
    real_lens: tuple[int, ...]  # real tokens of each segment


class PromptBook:
    """Prompts, chains and the future uses of chains and agents for one trace."""

    def __init__(self, trace: Trace, *, token_scale: int = 1) -> None:
        if token_scale < 1:
            raise ValueError(f"token_scale must be >= 1, got {token_scale}")
        self.scale = token_scale
        self.calls: tuple[Call, ...] = trace.calls
        self._seg_tokens: dict[str, array] = {}  # type: ignore[type-arg]
        self._chain_ids: dict[tuple[int, str], int] = {}
        self.chain_tokens: list[int] = []
        self.uses: list[list[int]] = []
        self.agent_calls: dict[str, list[int]] = {}
        self.prompts = tuple(self._build(index, call) for index, call in enumerate(self.calls))

    def _build(self, index: int, call: Call) -> Prompt:
        tokens: array = array("q")  # type: ignore[type-arg]
        chains: list[int] = []
        ends: list[int] = []
        parent = -1
        for segment in call.prompt:
            seg_tokens = self._tokens_of(segment.seg, segment.n_tokens)
            tokens.extend(seg_tokens)
            parent = self._chain(parent, segment.seg, len(seg_tokens))
            chains.append(parent)
            ends.append(len(tokens))
            uses = self.uses[parent]
            if not uses or uses[-1] != index:
                uses.append(index)
        self.agent_calls.setdefault(call.agent, []).append(index)
        real = tuple(segment.n_tokens for segment in call.prompt)
        return Prompt(tokens, tuple(chains), tuple(ends), real)

    def _tokens_of(self, seg: str, n_real: int) -> array:  # type: ignore[type-arg]
        key = f"{seg}\x00{n_real}"
        cached = self._seg_tokens.get(key)
        if cached is None:
            count = -(-n_real // self.scale)
            cached = array("q", (segment_token(seg, i * self.scale, _VOCAB) for i in range(count)))
            self._seg_tokens[key] = cached
        return cached

    def _chain(self, parent: int, seg: str, n_tokens: int) -> int:
        chain = self._chain_ids.get((parent, seg))
        if chain is None:
            chain = len(self.chain_tokens)
            self._chain_ids[(parent, seg)] = chain
            self.chain_tokens.append(n_tokens)
            self.uses.append([])
        return chain

    def real_tokens(self, index: int, n_replay: int) -> int:
        """Real tokens covered by the first ``n_replay`` replay tokens of call ``index``."""
        prompt = self.prompts[index]
        if n_replay <= 0:
            return 0
        k = bisect.bisect_left(prompt.ends, n_replay)
        if k >= len(prompt.ends):
            return sum(prompt.real_lens)
        start = prompt.ends[k - 1] if k else 0
        partial = min((n_replay - start) * self.scale, prompt.real_lens[k])
        return sum(prompt.real_lens[:k]) + partial

    def chain_at(self, index: int, position: int) -> int:
        """Chain id of the segment holding replay token ``position - 1`` of call ``index``."""
        prompt = self.prompts[index]
        k = min(bisect.bisect_left(prompt.ends, position), len(prompt.ends) - 1)
        return prompt.chains[k]

    def next_chain_use(self, chain: int, after: int) -> float:
        """Index of the first call after ``after`` that uses ``chain`` (inf if none)."""
        uses = self.uses[chain]
        k = bisect.bisect_right(uses, after)
        return float(uses[k]) if k < len(uses) else float("inf")

    def next_agent_call(self, agent: str, after: int) -> float:
        """Index of ``agent``'s first call after ``after`` (inf if none)."""
        calls = self.agent_calls.get(agent, [])
        k = bisect.bisect_right(calls, after)
        return float(calls[k]) if k < len(calls) else float("inf")

    def working_set_tokens(self) -> int:
        """The memory ratio's denominator: the peak live *reusable* prefix, replay tokens.

        A chain is reusable if at least two calls' prompts contain it; one that appears
        in a single prompt (an ``obs/<call id>`` tail, a one-off reply) can never be a
        hit, so it is left out. A reusable chain is live from its first use to its last;
        the working set is the most reusable tokens live at once over the trace (summing
        every reusable chain of a whole day instead would count memories that are never
        needed together). Ratio 1 can hold every live reusable prefix at the busiest call.
        """
        delta = [0] * (len(self.calls) + 1)
        for n_tokens, uses in zip(self.chain_tokens, self.uses, strict=True):
            if len(uses) >= 2:
                delta[uses[0]] += n_tokens
                delta[uses[-1]] -= n_tokens
        live = peak = 0
        for change in delta:
            live += change
            peak = max(peak, live)
        return max(1, peak)

    def reusable_tokens(self) -> int:
        """Distinct replay tokens of every reusable chain of the whole trace (reported)."""
        return sum(n for n, uses in zip(self.chain_tokens, self.uses, strict=True) if len(uses) > 1)

    def capacities(self, memory_ratio: float | None, *, host_ratio: float) -> tuple[int, int]:
        """Device and host capacities in replay tokens; ``None`` is ratio infinity.

        Infinity is every distinct token of the trace plus one prompt: nothing is ever
        evicted. The device always fits the largest prompt, so every call can run.
        """
        largest = max((len(prompt.tokens) for prompt in self.prompts), default=1)
        if memory_ratio is None:
            unbounded = sum(self.chain_tokens) + largest
            return unbounded, unbounded
        working = self.working_set_tokens()
        return max(largest, int(memory_ratio * working)), int(host_ratio * working)
