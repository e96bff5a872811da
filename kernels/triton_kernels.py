"""The Triton kernels. Imports triton only, so it compiles (AOT) without torch or a GPU.

Callers: `kv_copy` and `lora_copy`, which validate arguments, view every tensor as
same-width integers (copies move bits, never convert values) and choose the grid.
On CPU tensors `for_device` hands back Triton's interpreter for the same kernel.
"""

from __future__ import annotations

import functools
from typing import Any

import triton
import triton.language as tl


@triton.jit
def kv_copy_kernel(
    layer_ptrs,
    host,
    device_pages,
    host_pages,
    host_kv_stride,
    host_layer_stride,
    host_token_stride,
    n_layers,
    row_elems,
    PAGE_SIZE: tl.constexpr,
    BLOCK: tl.constexpr,
    TO_HOST: tl.constexpr,
):
    """Copy one page of one layer's K or V between the device pool and the host buffer.

    Grid: (pages, 2 * n_layers). Axis 1 enumerates K layers then V layers, matching
    `layer_ptrs`. Offsets are int64: a host buffer easily holds more than 2**31 elements.
    """
    page = tl.program_id(0)
    plane = tl.program_id(1)
    kv = (plane // n_layers).to(tl.int64)
    layer = (plane % n_layers).to(tl.int64)
    layer_base = tl.load(layer_ptrs + plane).to(tl.pointer_type(host.dtype.element_ty))
    layer_base = tl.multiple_of(layer_base, 16)  # KVDevicePool checks the alignment
    first_device_token = tl.load(device_pages + page).to(tl.int64) * PAGE_SIZE
    first_host_token = tl.load(host_pages + page).to(tl.int64) * PAGE_SIZE
    host_base = host + kv * host_kv_stride + layer * host_layer_stride
    offsets = tl.arange(0, BLOCK)
    for token in range(PAGE_SIZE):
        device_row = layer_base + (first_device_token + token) * row_elems
        host_row = host_base + (first_host_token + token) * host_token_stride
        for start in range(0, row_elems, BLOCK):
            cols = start + offsets
            mask = cols < row_elems
            if TO_HOST:
                tl.store(host_row + cols, tl.load(device_row + cols, mask=mask), mask=mask)
            else:
                tl.store(device_row + cols, tl.load(host_row + cols, mask=mask), mask=mask)


@triton.jit
def padded_copy_kernel(
    src,
    dst,
    src_rows,
    src_cols,
    src_row_stride,
    dst_rows,
    dst_cols,
    dst_row_stride,
    BLOCK_ROWS: tl.constexpr,
    BLOCK_COLS: tl.constexpr,
):
    """Copy a [src_rows, src_cols] matrix into the top-left of a larger one, zeroing the rest.

    Grid: (cdiv(dst_rows, BLOCK_ROWS), cdiv(dst_cols, BLOCK_COLS)); every destination
    element is written exactly once, so stale weights of an evicted adapter never survive.
    """
    rows = tl.program_id(0) * BLOCK_ROWS + tl.arange(0, BLOCK_ROWS)[:, None]
    cols = tl.program_id(1) * BLOCK_COLS + tl.arange(0, BLOCK_COLS)[None, :]
    rows = rows.to(tl.int64)
    in_src = (rows < src_rows) & (cols < src_cols)
    values = tl.load(src + rows * src_row_stride + cols, mask=in_src, other=0)
    in_dst = (rows < dst_rows) & (cols < dst_cols)
    tl.store(dst + rows * dst_row_stride + cols, values, mask=in_dst)


@functools.cache
def _interpreted(kernel: Any) -> Any:
    # Imported here: the interpreter needs numpy, which a GPU-only install may lack.
    from triton.runtime.interpreter import InterpretedFunction

    return kernel if isinstance(kernel, InterpretedFunction) else InterpretedFunction(kernel.fn)


def for_device(kernel: Any, device_type: str) -> Any:
    """The kernel itself for CUDA; its interpreted twin for CPU tensors.

    With TRITON_INTERPRET=1 set before import, `triton.jit` already returned the
    interpreted form and it is used as is.
    """
    return kernel if device_type == "cuda" else _interpreted(kernel)
