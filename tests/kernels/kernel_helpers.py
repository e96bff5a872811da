"""Helpers shared by the kernel tests (a plain module: conftest.py is not importable)."""

from __future__ import annotations

import torch
from scalesim.kernels import Impl

INT_VIEW = {2: torch.int16, 4: torch.int32}
DTYPES = (torch.bfloat16, torch.float16, torch.float32)
CPU_IMPLS = (Impl.TORCH, Impl.TRITON)


def bits(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor reinterpreted as integers, so NaN poison compares exactly."""
    return tensor.contiguous().view(INT_VIEW[tensor.element_size()])


def assert_bits_equal(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    assert torch.equal(bits(actual), bits(expected))
