"""KV page copies between SGLang's device pool and a HiCache host buffer.

Called by the ScaleSim KV prefetcher (scatter: host -> device, ahead of a request) and
evictor (gather: device -> host, before a prefix leaves the GPU). One Triton launch moves
every layer, K and V, of every listed page. Indices are page numbers of `pool.page_size`
tokens (with page_size 1 they are token slots). Invariants checked before any launch:
indices in bounds, destination pages distinct, host memory pinned when the pool is on CUDA.
Checking indices that live on the GPU costs one device synchronisation.
"""

from __future__ import annotations

import enum

import torch

from .errors import KernelArgumentError
from .kv_buffers import KVDevicePool, KVHostBuffer
from .kv_reference import gather_kv_torch, scatter_kv_torch
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
_MAX_BLOCK = 1024


def _checked_pages(
    argument: str, pages: torch.Tensor, *, n_pages: int, distinct: bool
) -> torch.Tensor:
    """Validate an index tensor and return it on the CPU as int64."""
    if pages.dim() != 1 or pages.dtype not in (torch.int32, torch.int64):
        raise KernelArgumentError(argument, f"expected 1-D int32/int64, got {pages.dtype}")
    on_cpu = pages.cpu().to(torch.int64)
    if on_cpu.numel() == 0:
        return on_cpu
    low, high = int(on_cpu.min()), int(on_cpu.max())
    if low < 0 or high >= n_pages:
        raise KernelArgumentError(argument, f"index range [{low}, {high}] outside [0, {n_pages})")
    if distinct and torch.unique(on_cpu).numel() != on_cpu.numel():
        raise KernelArgumentError(argument, "destination pages must be distinct")
    return on_cpu


def _check_pair(pool: KVDevicePool, host: KVHostBuffer) -> None:
    if host.tensor.dtype != pool.dtype:
        raise KernelArgumentError("host", f"dtype {host.tensor.dtype}, pool is {pool.dtype}")
    if host.n_layers != pool.n_layers or tuple(host.tensor.shape[3:]) != pool.row_shape:
        raise KernelArgumentError("host", f"shape {tuple(host.tensor.shape)} does not fit pool")
    if host.tensor.device.type != "cpu":
        raise KernelArgumentError("host", f"must be on the CPU, is on {host.tensor.device}")
    if pool.device.type == "cuda" and not host.tensor.is_pinned():
        raise KernelArgumentError("host", "must be pinned when the pool is on CUDA")


class Direction(enum.Enum):
    """Which way a KV copy moves data."""

    TO_HOST = "to_host"
    TO_DEVICE = "to_device"


def _launch_triton(
    pool: KVDevicePool,
    host: KVHostBuffer,
    *,
    pages: tuple[torch.Tensor, torch.Tensor],
    direction: Direction,
) -> None:
    """Launch the kernel over (pages, 2 * layers); `pages` is (device, host) on the CPU."""
    from .triton_kernels import for_device, kv_copy_kernel

    device_pages, host_pages = (p.to(pool.device, non_blocking=True) for p in pages)
    heads, head_dim = pool.row_shape
    row_elems = heads * head_dim
    kv_stride, layer_stride, token_stride = host.strides()
    kernel = for_device(kv_copy_kernel, pool.device.type)
    kernel[(device_pages.numel(), 2 * pool.n_layers)](
        pool.layer_ptrs,
        host.tensor.view(_INT_VIEW[pool.dtype.itemsize]),
        device_pages,
        host_pages,
        kv_stride,
        layer_stride,
        token_stride,
        pool.n_layers,
        row_elems,
        PAGE_SIZE=pool.page_size,
        BLOCK=min(_MAX_BLOCK, _block_size(row_elems)),
        TO_HOST=direction is Direction.TO_HOST,
    )


def _block_size(n_elems: int) -> int:
    """Smallest power of two >= n_elems (Triton block sizes must be powers of two)."""
    return 1 << max(n_elems - 1, 0).bit_length()


def _copy_kv(
    pool: KVDevicePool,
    host: KVHostBuffer,
    *,
    pages: tuple[torch.Tensor, torch.Tensor],
    direction: Direction,
    launch: Launch,
) -> CopyEvent:
    """Validate and run one copy; `pages` is (device_pages, host_pages) as given."""
    _check_pair(pool, host)
    device_pages, host_pages = pages
    if device_pages.numel() != host_pages.numel():
        raise KernelArgumentError("host_pages", "length differs from device_pages")
    to_host = direction is Direction.TO_HOST
    device_on_cpu = _checked_pages(
        "device_pages", device_pages, n_pages=pool.n_pages, distinct=not to_host
    )
    host_on_cpu = _checked_pages(
        "host_pages", host_pages, n_pages=host.n_slots // pool.page_size, distinct=to_host
    )
    impl = resolve_impl(launch.impl, pool.device)
    with on_stream(launch, pool.device):
        if device_on_cpu.numel():
            _run(impl, pool, host=host, pages=(device_on_cpu, host_on_cpu), direction=direction)
        return completion_event(pool.device)


def _run(
    impl: Impl,
    pool: KVDevicePool,
    *,
    host: KVHostBuffer,
    pages: tuple[torch.Tensor, torch.Tensor],
    direction: Direction,
) -> None:
    if impl is Impl.TRITON:
        _launch_triton(pool, host, pages=pages, direction=direction)
    elif direction is Direction.TO_HOST:
        gather_kv_torch(pool, host, device_pages=pages[0], host_pages=pages[1])
    else:
        scatter_kv_torch(host, pool, host_pages=pages[1], device_pages=pages[0])


def gather_kv(
    pool: KVDevicePool,
    host: KVHostBuffer,
    *,
    device_pages: torch.Tensor,
    host_pages: torch.Tensor,
    launch: Launch = DEFAULT_LAUNCH,
) -> CopyEvent:
    """Copy pages `device_pages[i]` of every layer's K and V into host pages `host_pages[i]`.

    Args:
        pool: the device pool (source).
        host: the pinned host buffer (destination).
        device_pages: int32/int64 page numbers in the pool, on the CPU or the pool device.
        host_pages: as many distinct page numbers in the host buffer.
        launch: implementation and CUDA stream; the copy is ordered on that stream.
    Returns:
        An event that completes when the host buffer holds the pages.
    """
    pages = (device_pages, host_pages)
    return _copy_kv(pool, host, pages=pages, direction=Direction.TO_HOST, launch=launch)


def scatter_kv(
    host: KVHostBuffer,
    pool: KVDevicePool,
    *,
    host_pages: torch.Tensor,
    device_pages: torch.Tensor,
    launch: Launch = DEFAULT_LAUNCH,
) -> CopyEvent:
    """Copy host pages `host_pages[i]` into pool pages `device_pages[i]`, every layer, K and V.

    Args:
        host: the pinned host buffer (source).
        pool: the device pool (destination).
        host_pages: int32/int64 page numbers in the host buffer, on the CPU or pool device.
        device_pages: as many distinct page numbers in the pool.
        launch: implementation and CUDA stream; the copy is ordered on that stream.
    Returns:
        An event that completes when the pool holds the pages.
    """
    pages = (device_pages, host_pages)
    return _copy_kv(pool, host, pages=pages, direction=Direction.TO_DEVICE, launch=launch)
