"""Runs SGLang's live copies through ``scalesim.kernels`` when ``copy_kernels`` is ``triton``.

Who calls it: the copy hooks in ``scalesim.patches.copy`` (HiCache's
``MHATokenToKVPoolHost.load_to_device_per_layer`` / ``backup_from_device_all_layer`` and
LoRA's ``copy_weight_into_buffer``), once per SGLang process through :func:`process_copy_path`;
the tests build a :class:`CopyPath` directly.

Invariants:
- Each method either performs the whole copy that SGLang's own call would have performed and
  returns True, or returns False having written nothing that SGLang's call does not then
  overwrite; the hook then runs SGLang's own path. It never raises.
- Only layouts the kernels cover are taken: the exact ``MHATokenToKVPoolHost`` class (no
  quantisation scales, no relocatable device buffers) with the ``layer_first`` or
  ``page_first`` host layout, io backends ``kernel`` and ``direct``; LoRA weights of the
  buffer's dtype, 2-D, dense rows, shaped like the slot view. Indices are SGLang's token slots,
  so the kernels run with a page of one token.
- A kind of copy whose kernel failed unexpectedly stays on SGLang's path for the rest of the
  process; each reason to fall back is logged once.
"""

from __future__ import annotations

import enum
import functools
import logging
import os
import weakref
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from scalesim.config import CopyKernels, ScaleSimConfig
from scalesim.kernels import (
    HostLayout,
    Impl,
    KernelArgumentError,
    KVDevicePool,
    KVHostBuffer,
    Launch,
    gather_kv,
    load_lora_a,
    scatter_kv,
)

logger = logging.getLogger(__name__)

_LAYOUTS = {"layer_first": HostLayout.LAYER_FIRST, "page_first": HostLayout.PAGE_FIRST}
_IO_BACKENDS = ("kernel", "direct")


class CopyKind(enum.Enum):
    """The live copies ScaleSim can take over."""

    KV_LOAD = "kv_load"  # HiCache host -> device, one layer
    KV_BACKUP = "kv_backup"  # HiCache device -> host, every layer
    LORA = "lora"  # one adapter weight into its GPU slot


class UnsupportedCopy(Exception):
    """A copy the kernels do not cover; SGLang's path runs it (expected, not an error)."""


@dataclass(frozen=True, eq=False)
class _Views:
    """The kernels' views of one host pool: every layer at once, then one per layer."""

    all_layers: tuple[KVDevicePool, KVHostBuffer]
    per_layer: tuple[tuple[KVDevicePool, KVHostBuffer], ...]
    first_k_ptr: int  # the device pool's address when built (rebuild if it moved)


class _IndicesOnCpu:
    """CPU copies of the index pair SGLang passes to every per-layer load of one operation.

    The kernels check indices on the CPU; indices on the GPU (io backend ``kernel``) would cost
    one device synchronisation per layer. The pair of the last call is kept (strong references,
    so identity stays meaningful) and reused while the very same tensors come back unmodified
    (``Tensor._version`` counts in-place writes): one synchronisation per load operation.
    """

    def __init__(self) -> None:
        self._key: tuple[torch.Tensor, torch.Tensor, int, int] | None = None
        self._pair: tuple[torch.Tensor, torch.Tensor] | None = None

    def on_cpu(
        self, host_indices: torch.Tensor, device_indices: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(host, device) indices on the CPU; the inputs themselves when already there."""
        if host_indices.device.type == "cpu" and device_indices.device.type == "cpu":
            return host_indices, device_indices
        key = self._key
        if (
            key is None
            or self._pair is None
            or key[0] is not host_indices
            or key[1] is not device_indices
            or key[2:] != (host_indices._version, device_indices._version)
        ):
            self._pair = (host_indices.cpu(), device_indices.cpu())
            self._key = (
                host_indices,
                device_indices,
                host_indices._version,
                device_indices._version,
            )
        return self._pair


class CopyPath:
    """Routes live copies through ``scalesim.kernels``; counts what ran where.

    ``counts[(kind, "triton")]`` is the number of copies the kernels ran,
    ``counts[(kind, "fallback")]`` the number handed back to SGLang.
    """

    def __init__(self, mode: CopyKernels, *, impl: Impl = Impl.TRITON) -> None:
        self.mode = mode
        self.impl = impl
        self.counts: Counter[tuple[CopyKind, str]] = Counter()
        self._views: weakref.WeakKeyDictionary[Any, _Views] = weakref.WeakKeyDictionary()
        self._broken: set[CopyKind] = set()
        self._logged: set[tuple[CopyKind, str]] = set()
        self._load_indices = _IndicesOnCpu()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CopyPath:
        """The path ``SCALESIM_CONFIG`` selects; SGLang's own when ScaleSim is off."""
        config = ScaleSimConfig.from_env(environ)
        enabled = config is not None and config.enabled
        return cls(config.copy_kernels if config is not None and enabled else CopyKernels.SGLANG)

    @property
    def enabled(self) -> bool:
        """True when copies should try the kernels at all."""
        return self.mode is CopyKernels.TRITON

    def load_kv_layer(
        self,
        host_pool: Any,
        *,
        host_indices: torch.Tensor,
        device_indices: torch.Tensor,
        layer_id: int,
        io_backend: str,
        is_draft: bool = False,
    ) -> bool:
        """``load_to_device_per_layer``: host tokens -> device tokens of one layer, K and V.

        Args:
            host_pool: SGLang's host pool (source).
            host_indices, device_indices: as many token slots, host and device side.
            layer_id: the layer, as SGLang numbers it in the host pool.
            io_backend: SGLang's ``--hicache-io-backend``.
            is_draft: a speculative draft layer (SGLang skips target layers out of range).
        Returns:
            True when the kernels made the copy; False for SGLang to make it.
        """

        def copy() -> None:
            views = self._views_of(host_pool, io_backend)
            if not is_draft and not 0 <= layer_id < host_pool.target_layer_num:
                raise UnsupportedCopy("a layer SGLang skips")
            if not 0 <= layer_id < len(views.per_layer):
                raise UnsupportedCopy(f"layer {layer_id} of {len(views.per_layer)}")
            pool, host = views.per_layer[layer_id]
            host_pages, device_pages = self._load_indices.on_cpu(host_indices, device_indices)
            scatter_kv(
                host,
                pool,
                host_pages=host_pages,
                device_pages=device_pages,
                launch=Launch(self.impl),
            )

        return self._run(CopyKind.KV_LOAD, copy)

    def backup_kv(
        self,
        host_pool: Any,
        *,
        host_indices: torch.Tensor,
        device_indices: torch.Tensor,
        io_backend: str,
    ) -> bool:
        """``backup_from_device_all_layer``: device tokens -> host tokens, every layer, K and V."""

        def copy() -> None:
            pool, host = self._views_of(host_pool, io_backend).all_layers
            gather_kv(
                pool,
                host,
                device_pages=device_indices,
                host_pages=host_indices,
                launch=Launch(self.impl),
            )

        return self._run(CopyKind.KV_BACKUP, copy)

    def copy_lora_weight(self, buffer_view: torch.Tensor, weight: torch.Tensor) -> bool:
        """``copy_weight_into_buffer``: an adapter weight into its slot view, bit for bit.

        The view (``A_buffer[..][slot, :rank*stack, :]`` or ``B_buffer[..][slot, :, :rank]``)
        has exactly the weight's shape, so the kernel's zero padding writes nothing else.
        """

        def copy() -> None:
            if weight.dim() != 2 or tuple(weight.shape) != tuple(buffer_view.shape):
                raise UnsupportedCopy(
                    f"weight {tuple(weight.shape)} for {tuple(buffer_view.shape)}"
                )
            if weight.dtype != buffer_view.dtype:
                raise UnsupportedCopy(f"dtype {weight.dtype} into {buffer_view.dtype}")
            # A and B views alike: a one-slot buffer the weight fills exactly (no padding).
            load_lora_a(buffer_view.unsqueeze(0), weight, slot=0, launch=Launch(self.impl))

        return self._run(CopyKind.LORA, copy)

    def _run(self, kind: CopyKind, copy: Any) -> bool:
        if not self.enabled or kind in self._broken:
            return False
        try:
            copy()
        except (UnsupportedCopy, KernelArgumentError) as err:
            self._fall_back(kind, f"not supported: {err}")
            return False
        except Exception:  # a kernel failure must never fail SGLang's copy
            self._broken.add(kind)
            logger.exception(
                "scalesim copy kernels: %s failed; SGLang's path from now on", kind.value
            )
            self.counts[(kind, "fallback")] += 1
            return False
        self.counts[(kind, "triton")] += 1
        if self.counts[(kind, "triton")] == 1:
            logger.info(
                "scalesim copy kernels: first %s ran on scalesim.kernels (%s)",
                kind.value,
                self.impl.value,
            )
        return True

    def _fall_back(self, kind: CopyKind, reason: str) -> None:
        self.counts[(kind, "fallback")] += 1
        if (kind, reason) not in self._logged:
            self._logged.add((kind, reason))
            logger.warning("scalesim copy kernels: %s on SGLang's path (%s)", kind.value, reason)

    def _views_of(self, host_pool: Any, io_backend: str) -> _Views:
        _check_supported(host_pool, io_backend)
        views = self._views.get(host_pool)
        if views is None or views.first_k_ptr != host_pool.device_k_buffers[0].data_ptr():
            views = _build_views(host_pool)
            self._views[host_pool] = views
        return views


def _check_supported(host_pool: Any, io_backend: str) -> None:
    from sglang.srt.mem_cache.pool_host.mha import MHATokenToKVPoolHost

    if type(host_pool) is not MHATokenToKVPoolHost:
        raise UnsupportedCopy(f"host pool {type(host_pool).__name__}")
    if host_pool.layout not in _LAYOUTS:
        raise UnsupportedCopy(f"host layout {host_pool.layout}")
    if io_backend not in _IO_BACKENDS:
        raise UnsupportedCopy(f"io backend {io_backend}")
    for info in host_pool._buffer_infos:
        if info.scales is not None or info.transfer_buffers is not None:
            raise UnsupportedCopy("KV scales or relocatable device buffers")


def _build_views(host_pool: Any) -> _Views:
    layout = _LAYOUTS[host_pool.layout]
    k_layers, v_layers = host_pool.device_k_buffers, host_pool.device_v_buffers
    kv_buffer = host_pool.kv_buffer
    all_layers = (
        KVDevicePool.from_layers(k_layers, v_layers, page_size=1),
        KVHostBuffer(kv_buffer, layout),
    )
    per_layer = []
    for layer in range(len(k_layers)):
        if layout is HostLayout.LAYER_FIRST:
            host_layer = kv_buffer[:, layer : layer + 1]
        else:
            host_layer = kv_buffer[:, :, layer : layer + 1]
        pool = KVDevicePool.from_layers([k_layers[layer]], [v_layers[layer]], page_size=1)
        per_layer.append((pool, KVHostBuffer(host_layer, layout)))
    return _Views(all_layers, tuple(per_layer), k_layers[0].data_ptr())


@functools.cache
def process_copy_path() -> CopyPath:
    """This process's path, from ``SCALESIM_CONFIG`` (read once; each SGLang process is fresh)."""
    return CopyPath.from_env(os.environ)


def copy_counts() -> dict[tuple[str, str], int]:
    """This process's live copies so far, as ``(kind, "triton" | "fallback") -> count``."""
    return {(kind.value, path): count for (kind, path), count in process_copy_path().counts.items()}
