"""Copies of LoRA adapter weights from host memory into one slot of SGLang's LoRA buffers.

Called by ScaleSim's adapter prefetcher. SGLang 0.5.23's `LoRAMemoryPool` keeps, per layer
and module, `A_buffer` of `[slots, max_rank * stack, in_dim]` and `B_buffer` of
`[slots, out_dim, max_rank]`; an adapter of rank r fills rows `[:r * stack]` of A and
columns `[:r]` of B. These copies also zero the rest of the slot, so a smaller adapter
never reads weights left behind by an evicted larger one. Values are copied bit for bit:
weight and buffer must share a dtype (scale B before the copy, as SGLang does).
"""

from __future__ import annotations

import torch

from .errors import KernelArgumentError
from .kv_buffers import check_dtype
from .launch import (
    DEFAULT_LAUNCH,
    CopyEvent,
    Impl,
    Launch,
    completion_event,
    on_stream,
    resolve_impl,
)

_INT_VIEW = {2: torch.int16, 4: torch.int32}
_BLOCK_ROWS = 16
_BLOCK_COLS = 128


def _check(buffer: torch.Tensor, weight: torch.Tensor, slot: int) -> None:
    if buffer.dim() != 3 or buffer.stride(2) != 1:
        raise KernelArgumentError("buffer", "expected [slots, rows, cols] with dense rows")
    check_dtype("buffer", buffer)
    if weight.dtype != buffer.dtype:
        raise KernelArgumentError("weight", f"dtype {weight.dtype}, buffer is {buffer.dtype}")
    if weight.dim() != 2 or (weight.numel() and weight.stride(1) != 1):
        raise KernelArgumentError("weight", "expected a 2-D matrix with dense rows")
    if not 0 <= slot < buffer.shape[0]:
        raise KernelArgumentError("slot", f"{slot} outside [0, {buffer.shape[0]})")
    if weight.device not in (torch.device("cpu"), buffer.device):
        raise KernelArgumentError("weight", f"on {weight.device}, buffer on {buffer.device}")
    on_host = weight.device.type == "cpu"
    if buffer.device.type == "cuda" and on_host and not weight.is_pinned():
        raise KernelArgumentError("weight", "host weights must be pinned for a CUDA buffer")


def _copy_torch(target: torch.Tensor, weight: torch.Tensor) -> None:
    rows, cols = weight.shape
    target[:rows, :cols].copy_(weight, non_blocking=True)
    target[rows:].zero_()
    target[:rows, cols:].zero_()


def _copy_triton(target: torch.Tensor, weight: torch.Tensor) -> None:
    from .triton_kernels import for_device, padded_copy_kernel

    unit = _INT_VIEW[target.dtype.itemsize]
    grid = (
        -(-target.shape[0] // _BLOCK_ROWS),
        -(-target.shape[1] // _BLOCK_COLS),
    )
    kernel = for_device(padded_copy_kernel, target.device.type)
    kernel[grid](
        weight.view(unit),
        target.view(unit),
        weight.shape[0],
        weight.shape[1],
        weight.stride(0),
        target.shape[0],
        target.shape[1],
        target.stride(0),
        BLOCK_ROWS=_BLOCK_ROWS,
        BLOCK_COLS=_BLOCK_COLS,
    )


def _copy_into_slot(
    buffer: torch.Tensor, weight: torch.Tensor, *, slot: int, launch: Launch
) -> CopyEvent:
    target = buffer[slot]
    impl = resolve_impl(launch.impl, buffer.device)
    with on_stream(launch, buffer.device):
        if target.numel():
            copy = _copy_triton if impl is Impl.TRITON else _copy_torch
            copy(target, weight)
        return completion_event(buffer.device)


def load_lora_a(
    buffer: torch.Tensor, weight: torch.Tensor, *, slot: int, launch: Launch = DEFAULT_LAUNCH
) -> CopyEvent:
    """Copy an adapter's A weight `[rank * stack, in_dim]` into `buffer[slot]`.

    Args:
        buffer: SGLang's `A_buffer[module][layer]`, `[slots, max_rank * stack, in_dim]`.
        weight: the adapter's A matrix, pinned host memory or on the buffer's device.
        slot: the LoRA slot (buffer id) to fill; rows past `rank * stack` are zeroed.
        launch: implementation and CUDA stream.
    """
    _check(buffer, weight, slot)
    if weight.shape[1] != buffer.shape[2] or weight.shape[0] > buffer.shape[1]:
        raise KernelArgumentError(
            "weight", f"A {tuple(weight.shape)} does not fit slot {tuple(buffer.shape[1:])}"
        )
    return _copy_into_slot(buffer, weight, slot=slot, launch=launch)


def load_lora_b(
    buffer: torch.Tensor, weight: torch.Tensor, *, slot: int, launch: Launch = DEFAULT_LAUNCH
) -> CopyEvent:
    """Copy an adapter's (scaled) B weight `[out_dim, rank]` into `buffer[slot]`.

    Args:
        buffer: SGLang's `B_buffer[module][layer]`, `[slots, out_dim, max_rank]`.
        weight: the adapter's B matrix, pinned host memory or on the buffer's device.
        slot: the LoRA slot (buffer id) to fill; columns past `rank` are zeroed.
        launch: implementation and CUDA stream.
    """
    _check(buffer, weight, slot)
    if weight.shape[0] != buffer.shape[1] or weight.shape[1] > buffer.shape[2]:
        raise KernelArgumentError(
            "weight", f"B {tuple(weight.shape)} does not fit slot {tuple(buffer.shape[1:])}"
        )
    return _copy_into_slot(buffer, weight, slot=slot, launch=launch)
