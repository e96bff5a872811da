"""DEVELOPMENT/TEST ONLY: lets the real SGLang server run on a machine without a GPU.

This module is the one place outside ``scalesim.patches`` that rebinds third-party names. It
is applied by the plug-in (``scalesim.sglang.plugin``) in every SGLang process, and only when
``scalesim serve --device cpu`` asked for CPU mode AND CUDA is absent; on a GPU machine it is
never applied. Together with the stand-in ``sgl_kernel`` package (``cpu_standin/``, put on
``PYTHONPATH`` by ``scalesim serve``) it supplies what SGLang 0.5.23's CPU path lacks here:

- pinned host memory (``Tensor.pin_memory`` and ``pin_memory=True`` factories) — LoRA asks for
  it; on CPU an ordinary tensor is equivalent;
- for HiCache with ``--hicache-io-backend direct --hicache-mem-layout layer_first``:
  ``torch.cuda.cudart()`` answering ``cudaHostRegister``/``cudaHostUnregister`` as no-ops,
  ``torch.cpu.Stream``/``torch.cpu.Event`` given the no-op methods SGLang calls, and a torch
  ``transfer_kv_direct`` bound into ``sglang.srt.mem_cache.pool_host.mha``.
"""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

logger = logging.getLogger(__name__)

#: Folder holding the stand-in ``sgl_kernel`` package; goes first on children's PYTHONPATH.
STANDIN_DIR = Path(__file__).resolve().parent / "cpu_standin"

_PIN_MEMORY_FACTORIES = ("tensor", "empty", "zeros", "ones", "full", "arange", "empty_strided")


def needed() -> bool:
    """True where CUDA is absent, the only case in which this layer may be applied."""
    return not torch.cuda.is_available()


def is_applied() -> bool:
    """True once :func:`apply` ran in this process."""
    return torch.cuda.cudart is _NoCudaRuntime


def apply() -> None:
    """Install every stand-in (idempotent). Raises if CUDA is present: never shadow a GPU."""
    if not needed():
        raise RuntimeError("the CPU compatibility layer must not be applied where CUDA exists")
    if is_applied():
        return
    _drop_pin_memory()
    torch.cuda.cudart = _NoCudaRuntime
    _complete_cpu_streams()
    mha: Any = importlib.import_module("sglang.srt.mem_cache.pool_host.mha")
    mha.transfer_kv_direct = transfer_kv_direct  # on CPU it imports no transfer op
    logger.warning(
        "ScaleSim CPU development mode: SGLang runs with CPU stand-ins (not for production)"
    )


def transfer_kv_direct(
    src_layers: Sequence[torch.Tensor],
    dst_layers: Sequence[torch.Tensor],
    src_indices: torch.Tensor,
    dst_indices: torch.Tensor,
    page_size: int,
) -> None:
    """Torch version of sgl_kernel's op: per layer, ``dst[dst_indices] = src[src_indices]``.

    Indices are token slots; ``page_size`` only matters to the CUDA kernel's batching.
    """
    del page_size
    for src, dst in zip(src_layers, dst_layers, strict=True):
        dst[dst_indices.to(dst.device)] = src[src_indices.to(src.device)].to(dst.dtype)


def _drop_pin_memory() -> None:
    torch.Tensor.pin_memory = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    for name in _PIN_MEMORY_FACTORIES:
        setattr(torch, name, _without_pin_memory(getattr(torch, name)))


def _without_pin_memory(factory: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    @functools.wraps(factory)
    def unpinned(*args: Any, **kwargs: Any) -> torch.Tensor:
        kwargs.pop("pin_memory", None)
        return factory(*args, **kwargs)

    return unpinned


class _NoCudaRuntime:
    """``torch.cuda.cudart()`` stand-in: host registration succeeds (CPU memory needs none).

    Method names are CUDA's, as SGLang calls them.
    """

    @staticmethod
    def cudaHostRegister(ptr: int, size: int, flags: int) -> int:
        return 0

    @staticmethod
    def cudaHostUnregister(ptr: int) -> int:
        return 0

    @staticmethod
    def cudaGetErrorString(code: int) -> str:
        return f"cuda error {code} (ScaleSim CPU stand-in)"


def _noop(*args: object, **kwargs: object) -> None:
    return None


def _always_done(*args: object, **kwargs: object) -> bool:
    return True


def _complete_cpu_streams() -> None:
    """CPU work is synchronous, so every stream/event wait is already satisfied."""
    stream_methods = {"synchronize": _noop, "query": _always_done, "wait_event": _noop}
    event_methods = {"elapsed_time": lambda *args: 0.0}
    for cls, methods in ((torch.cpu.Stream, stream_methods), (torch.cpu.Event, event_methods)):
        for name, method in methods.items():
            if not hasattr(cls, name):
                setattr(cls, name, method)
