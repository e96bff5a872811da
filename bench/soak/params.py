"""The soak's load parameters and the constants its modules share.

Called by every module of :mod:`scalesim.bench.soak`: :class:`SoakParams` is built once from the
command line (``command``) and read by the simulations, the sampler and the report.
Invariants: :class:`SoakParams` is frozen and validated in ``__post_init__`` (counts >= 1,
``pool_tokens`` >= 1024, positive durations, ``tick_hz`` >= 0); :data:`PARAM_HELP` has one entry
per field; no mutable module state.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

#: Default folder of the JSON, Markdown and PNG results (``bench/results``).
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
SERVED_MODEL_NAME = "scalesim-soak"
#: Growth is measured from the first sample at this fraction of the run (after warm-up).
WARM_FRACTION = 0.25
#: Error kinds counted in ``totals.errors`` (lost updates are counted on their own).
ERROR_KINDS = ("request_errors", "update_errors", "delete_errors", "state_errors", "crashes")
MIB = 1 << 20


@dataclasses.dataclass(frozen=True)
class SoakParams:
    """The load (times in seconds, sizes in tokens), validated in one place."""

    duration_s: float = 600.0
    simulations: int = 8
    agents: int = 16
    chat_threads: int = 4
    tick_hz: float = 0.0
    episode_ticks: int = 100
    max_tokens: int = 4
    persona_words: int = 40
    pool_tokens: int = 4096
    sample_s: float = 5.0

    def __post_init__(self) -> None:
        counts = (self.simulations, self.agents, self.chat_threads, self.episode_ticks)
        if min(*counts, self.max_tokens, self.persona_words) < 1 or self.pool_tokens < 1024:
            raise ValueError("counts must be >= 1 and pool_tokens >= 1024")
        if not (self.duration_s > 0 and self.sample_s > 0 and self.tick_hz >= 0):
            raise ValueError("duration_s and sample_s must be > 0, tick_hz >= 0")


#: ``--help`` of each :class:`SoakParams` field.
PARAM_HELP = {
    "duration_s": "seconds of load after the server is healthy",
    "simulations": "simulations at once, each with its own ticker thread and namespaces",
    "agents": "agents per simulation",
    "chat_threads": "threads sending chat completions",
    "tick_hz": "distance updates per second per simulation (0: as fast as answered)",
    "episode_ticks": "updates of one namespace before it is checked and deleted",
    "max_tokens": "output tokens per chat",
    "persona_words": "words of each agent's system prompt",
    "pool_tokens": "device KV pool in tokens (--max-total-tokens)",
    "sample_s": "seconds between two samples of memory and state",
}
