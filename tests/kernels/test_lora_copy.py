"""load_lora_a / load_lora_b: one slot filled, the rank padding zeroed, other slots untouched."""

from __future__ import annotations

import pytest
import torch
from kernel_helpers import CPU_IMPLS, DTYPES, assert_bits_equal
from scalesim.kernels import Impl, KernelArgumentError, Launch, load_lora_a, load_lora_b

N_SLOTS, MAX_RANK, IN_DIM, OUT_DIM = 3, 8, 37, 45


def poisoned(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    return torch.full(shape, float("nan"), dtype=dtype)


def padded(weight: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    expected = torch.zeros(shape, dtype=weight.dtype)
    expected[: weight.shape[0], : weight.shape[1]] = weight
    return expected


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("rank", "stack"), [(1, 1), (5, 3), (MAX_RANK, 1), (MAX_RANK, 2)])
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_load_a_pads_rows(
    generator: torch.Generator, impl: Impl, rank: int, stack: int, dtype: torch.dtype
) -> None:
    buffer = poisoned((N_SLOTS, MAX_RANK * stack, IN_DIM), dtype)
    weight = torch.randn((rank * stack, IN_DIM), generator=generator).to(dtype)
    load_lora_a(buffer, weight, slot=1, launch=Launch(impl=impl))
    assert_bits_equal(buffer[1], padded(weight, (MAX_RANK * stack, IN_DIM)))
    assert buffer[0].isnan().all() and buffer[2].isnan().all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rank", [1, 3, MAX_RANK])
@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_load_b_pads_columns(
    generator: torch.Generator, impl: Impl, rank: int, dtype: torch.dtype
) -> None:
    buffer = poisoned((N_SLOTS, OUT_DIM, MAX_RANK), dtype)
    weight = torch.randn((OUT_DIM, rank), generator=generator).to(dtype)
    load_lora_b(buffer, weight, slot=2, launch=Launch(impl=impl))
    assert_bits_equal(buffer[2], padded(weight, (OUT_DIM, MAX_RANK)))
    assert buffer[:2].isnan().all()


@pytest.mark.parametrize("impl", CPU_IMPLS)
def test_load_a_clears_a_previous_larger_adapter(generator: torch.Generator, impl: Impl) -> None:
    """Regression guard: a rank-2 adapter must not inherit rows of the rank-8 one it replaces."""
    buffer = torch.zeros((N_SLOTS, MAX_RANK, IN_DIM))
    load_lora_a(buffer, torch.randn((MAX_RANK, IN_DIM), generator=generator), slot=0)
    small = torch.randn((2, IN_DIM), generator=generator)
    load_lora_a(buffer, small, slot=0, launch=Launch(impl=impl))
    assert_bits_equal(buffer[0], padded(small, (MAX_RANK, IN_DIM)))


@pytest.mark.parametrize(
    ("buffer_shape", "weight_shape", "slot", "argument"),
    [
        ((N_SLOTS, MAX_RANK, IN_DIM), (MAX_RANK + 1, IN_DIM), 0, "weight"),
        ((N_SLOTS, MAX_RANK, IN_DIM), (MAX_RANK, IN_DIM - 1), 0, "weight"),
        ((N_SLOTS, MAX_RANK, IN_DIM), (MAX_RANK, IN_DIM), N_SLOTS, "slot"),
        ((N_SLOTS, MAX_RANK, IN_DIM), (MAX_RANK, IN_DIM), -1, "slot"),
        ((MAX_RANK, IN_DIM), (MAX_RANK, IN_DIM), 0, "buffer"),
        ((N_SLOTS, MAX_RANK, IN_DIM), (1, MAX_RANK, IN_DIM), 0, "weight"),
    ],
)
def test_load_a_rejects_bad_arguments(
    buffer_shape: tuple[int, ...], weight_shape: tuple[int, ...], slot: int, argument: str
) -> None:
    buffer = poisoned(buffer_shape, torch.float32)
    with pytest.raises(KernelArgumentError) as raised:
        load_lora_a(buffer, torch.zeros(weight_shape), slot=slot)
    assert raised.value.argument == argument
    assert buffer.isnan().all()


def test_load_b_rejects_dtype_mismatch_and_unsupported_dtype() -> None:
    buffer = poisoned((N_SLOTS, OUT_DIM, MAX_RANK), torch.bfloat16)
    with pytest.raises(KernelArgumentError, match="dtype") as raised:
        load_lora_b(buffer, torch.zeros((OUT_DIM, 2)), slot=0)
    assert raised.value.argument == "weight"
    doubles = torch.zeros((N_SLOTS, OUT_DIM, MAX_RANK), dtype=torch.float64)
    with pytest.raises(KernelArgumentError) as raised:
        load_lora_b(doubles, torch.zeros((OUT_DIM, 2), dtype=torch.float64), slot=0)
    assert raised.value.argument == "buffer"
    with pytest.raises(KernelArgumentError) as raised:
        load_lora_b(buffer, torch.zeros((OUT_DIM, MAX_RANK + 1), dtype=torch.bfloat16), slot=0)
    assert raised.value.argument == "weight"
