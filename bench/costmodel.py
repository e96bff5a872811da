"""Cost model of one GPU serving replayed calls: the constants behind the makespan.

Who calls it: the replay engine (``replay/engine.py``) prices every batch iteration
with it; ``cli.py`` loads it from ``--cost-model FILE.json``. Defaults describe an
H100 SXM serving a Llama-3-8B-class model in bf16; each default states its
derivation so that a GPU calibration can replace it by measurement.

Invariants: frozen; every field is a finite positive number; JSON with an unknown
key is rejected rather than silently ignored.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CostModel:
    """Explicit serving costs; times in seconds, sizes in bytes.

    Attributes:
        prefill_tokens_per_s: prompt tokens computed per second. 2 x 8e9 FLOP/token
            (two FLOPs per weight) at 50% of the H100's 989 TFLOP/s dense bf16:
            494.5e12 / 16e9 ~ 30,900 tokens/s.
        decode_base_s: time of one decode step at batch size 1: the 16 GB of bf16
            weights read once at 3.35 TB/s HBM bandwidth ~ 4.8 ms.
        decode_per_seq_s: extra time per sequence in a decode step: reading its KV
            (~1,000 tokens x 131,072 B = 131 MB at 3.35 TB/s ~ 0.04 ms) plus its
            share of compute; 0.05 ms.
        kv_bytes_per_token: 2 (K and V) x 32 layers x 8 KV heads x 128 head dim x
            2 bytes (bf16) = 131,072 B.
        h2d_bytes_per_s: host-to-device copy speed from pinned memory over PCIe Gen5
            x16 (64 GB/s raw; 25-50 GB/s effective): 25e9, the conservative end.
        adapter_load_s: loading one rank-16 LoRA adapter for all q/k/v/o/gate/up/down
            projections (~84 MB bf16) from pinned host memory at 25 GB/s plus launch
            overhead: 4 ms.
        max_batch: most sequences decoded together (SGLang's --max-running-requests
            for an 8B model on 80 GB is in the hundreds; 256).
    """

    prefill_tokens_per_s: float = 30_900.0
    decode_base_s: float = 0.0048
    decode_per_seq_s: float = 0.00005
    kv_bytes_per_token: int = 131_072
    h2d_bytes_per_s: float = 25e9
    adapter_load_s: float = 0.004
    max_batch: int = 256

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"cost model {field.name}: {value!r} is not a number")
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"cost model {field.name}: {value!r} must be finite and > 0")
        if not isinstance(self.max_batch, int) or not isinstance(self.kv_bytes_per_token, int):
            raise ValueError("cost model max_batch and kv_bytes_per_token must be integers")

    def prefill_s(self, n_tokens: int) -> float:
        """Seconds to compute ``n_tokens`` prompt tokens."""
        return n_tokens / self.prefill_tokens_per_s

    def decode_step_s(self, batch_size: int) -> float:
        """Seconds of one decode step over ``batch_size`` running sequences."""
        return self.decode_base_s + self.decode_per_seq_s * batch_size

    def h2d_s(self, n_bytes: int) -> float:
        """Seconds to copy ``n_bytes`` from host to device."""
        return n_bytes / self.h2d_bytes_per_s


def load_cost_model(path: Path) -> CostModel:
    """Read a JSON object of CostModel fields (any subset); unknown keys are an error."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a cost model must be a JSON object")
    known = {field.name for field in dataclasses.fields(CostModel)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown cost model keys {unknown}; known: {sorted(known)}")
    return CostModel(**data)
