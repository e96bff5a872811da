"""The CPU development layer's torch stand-ins compute what SGLang's CUDA ops compute."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from scalesim.sglang.cpu_compat import STANDIN_DIR, transfer_kv_direct


def test_transfer_kv_direct_copies_slots_per_layer() -> None:
    src = [torch.arange(12.0).reshape(6, 2), torch.arange(12.0, 24.0).reshape(6, 2)]
    dst = [torch.zeros(4, 2), torch.zeros(4, 2)]
    transfer_kv_direct(src, dst, torch.tensor([5, 0]), torch.tensor([1, 3]), page_size=1)
    assert dst[0].tolist() == [[0, 0], [10, 11], [0, 0], [0, 1]]
    assert dst[1].tolist() == [[0, 0], [22, 23], [0, 0], [12, 13]]


def _load_standin():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "scalesim_sgl_kernel_standin", STANDIN_DIR / "sgl_kernel" / "__init__.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_TRITON_REFERENCE = """
import importlib.util, sys, torch
from sglang.srt.mem_cache.allocation import assign_req_to_token_pool
spec = importlib.util.spec_from_file_location("standin", sys.argv[1])
standin = importlib.util.module_from_spec(spec)
spec.loader.exec_module(standin)
rows, starts, ends = torch.tensor([2, 0, 3]), torch.tensor([1, 0, 4]), torch.tensor([3, 2, 9])
out_cache_loc = torch.arange(7, 7 + int((ends - starts).sum()), dtype=torch.int64)
expected = torch.zeros(4, 40, dtype=torch.int64)
assign_req_to_token_pool[(3,)](rows, expected, starts, ends, out_cache_loc, 40, 4)
actual = torch.zeros(4, 40, dtype=torch.int64)
standin.assign_req_to_token_pool_cpu(rows, actual, starts, ends, out_cache_loc, 40)
print(int(expected.count_nonzero()), torch.equal(actual, expected))
"""


def test_standin_assign_req_to_token_pool_matches_the_triton_kernel() -> None:
    """The stand-in against SGLang's own Triton kernel on the same inputs (requests with
    different pool rows, offsets and lengths). The kernel runs under ``TRITON_INTERPRET=1`` in
    a subprocess: the variable must be set before ``@triton.jit`` runs and would leak here."""
    done = subprocess.run(
        [sys.executable, "-c", _TRITON_REFERENCE, str(STANDIN_DIR / "sgl_kernel" / "__init__.py")],
        env={**os.environ, "TRITON_INTERPRET": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["9", "True"]  # 9 slots written by the kernel, all equal


def test_standin_unsupported_op_raises_with_its_name() -> None:
    standin = _load_standin()
    with pytest.raises(NotImplementedError, match="fill_bonus_tokens_cpu"):
        standin.fill_bonus_tokens_cpu()
