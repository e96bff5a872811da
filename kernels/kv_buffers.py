"""Views over SGLang's KV storage: the per-layer device pool and the HiCache host buffer.

`KVDevicePool` wraps the per-layer K and V tensors of SGLang 0.5.23's `MHATokenToKVPool`
(`k_buffer[layer]`, `v_buffer[layer]`, each `[slots, heads, head_dim]`, contiguous) and
keeps a table of their base addresses so one kernel launch reaches every layer.
`KVHostBuffer` wraps `MHATokenToKVPoolHost.kv_buffer`: `[2, layers, slots, heads, head_dim]`
for the `layer_first` layout, `[2, slots, layers, heads, head_dim]` for `page_first`
(index 0 is K, 1 is V). Both validate their shapes once, at construction.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import KernelArgumentError

SUPPORTED_DTYPES = (torch.bfloat16, torch.float16, torch.float32)

# Base addresses must be 16-byte aligned: the kernel promises it to the compiler so that
# row copies use 128-bit loads and stores.
_BASE_ALIGN_BYTES = 16


class HostLayout(enum.Enum):
    """Host buffer layouts of SGLang's HiCache that the copies support."""

    LAYER_FIRST = "layer_first"
    PAGE_FIRST = "page_first"


def check_dtype(argument: str, tensor: torch.Tensor) -> None:
    """Reject dtypes other than bf16, fp16 and fp32."""
    if tensor.dtype not in SUPPORTED_DTYPES:
        raise KernelArgumentError(argument, f"dtype {tensor.dtype} is not bf16, fp16 or fp32")


def _check_layers(argument: str, layers: Sequence[torch.Tensor], like: torch.Tensor) -> None:
    for index, layer in enumerate(layers):
        name = f"{argument}[{index}]"
        if layer.shape != like.shape or layer.dtype != like.dtype:
            raise KernelArgumentError(
                name, f"{tuple(layer.shape)} {layer.dtype} differs from {tuple(like.shape)}"
            )
        if layer.device != like.device:
            raise KernelArgumentError(name, f"on {layer.device}, layer 0 is on {like.device}")
        if not layer.is_contiguous():
            raise KernelArgumentError(name, "must be contiguous")
        if layer.data_ptr() % _BASE_ALIGN_BYTES:
            raise KernelArgumentError(name, f"base address not {_BASE_ALIGN_BYTES}-byte aligned")


@dataclass(frozen=True, eq=False)  # tensors: identity, not elementwise, equality
class KVDevicePool:
    """The per-layer K and V tensors of a device KV pool, grouped in pages of `page_size`.

    `layer_ptrs` holds the base address of every K layer followed by every V layer (int64,
    on the pool's device). Build it with `from_layers`.
    """

    k_layers: tuple[torch.Tensor, ...]
    v_layers: tuple[torch.Tensor, ...]
    page_size: int
    layer_ptrs: torch.Tensor

    @classmethod
    def from_layers(
        cls,
        k_layers: Sequence[torch.Tensor],
        v_layers: Sequence[torch.Tensor],
        *,
        page_size: int,
    ) -> KVDevicePool:
        """Validate SGLang's `k_buffer` / `v_buffer` lists and build the address table."""
        if not k_layers or len(k_layers) != len(v_layers):
            raise KernelArgumentError(
                "v_layers", f"{len(v_layers)} layers for {len(k_layers)} K layers (need >= 1)"
            )
        first = k_layers[0]
        if first.dim() != 3:
            raise KernelArgumentError("k_layers[0]", "expected [slots, heads, head_dim]")
        check_dtype("k_layers[0]", first)
        if page_size < 1 or first.shape[0] < page_size:
            raise KernelArgumentError("page_size", f"{page_size} for {first.shape[0]} slots")
        _check_layers("k_layers", k_layers, first)
        _check_layers("v_layers", v_layers, first)
        addresses = [layer.data_ptr() for layer in (*k_layers, *v_layers)]
        ptrs = torch.tensor(addresses, dtype=torch.int64).to(first.device)
        return cls(tuple(k_layers), tuple(v_layers), page_size, ptrs)

    @property
    def n_layers(self) -> int:
        return len(self.k_layers)

    @property
    def n_pages(self) -> int:
        """Whole pages in the pool; a partial trailing page is never addressed."""
        return self.k_layers[0].shape[0] // self.page_size

    @property
    def row_shape(self) -> tuple[int, int]:
        """(heads, head_dim) of one token slot."""
        return (self.k_layers[0].shape[1], self.k_layers[0].shape[2])

    @property
    def dtype(self) -> torch.dtype:
        return self.k_layers[0].dtype

    @property
    def device(self) -> torch.device:
        return self.k_layers[0].device


@dataclass(frozen=True, eq=False)  # tensors: identity, not elementwise, equality
class KVHostBuffer:
    """A HiCache host KV buffer (`MHATokenToKVPoolHost.kv_buffer`) and its layout."""

    tensor: torch.Tensor
    layout: HostLayout

    def __post_init__(self) -> None:
        if self.tensor.dim() != 5 or self.tensor.shape[0] != 2:
            raise KernelArgumentError("host", f"expected 5-D [2, ...], got {self.tensor.shape}")
        check_dtype("host", self.tensor)
        if self.tensor.stride(4) != 1 or self.tensor.stride(3) != self.tensor.shape[4]:
            raise KernelArgumentError("host", "each token row [heads, head_dim] must be dense")

    @classmethod
    def allocate(cls, pool: KVDevicePool, *, n_tokens: int, layout: HostLayout) -> KVHostBuffer:
        """Allocate a zeroed buffer for `n_tokens` slots, pinned when the pool is on CUDA."""
        heads, head_dim = pool.row_shape
        if layout is HostLayout.LAYER_FIRST:
            shape = (2, pool.n_layers, n_tokens, heads, head_dim)
        else:
            shape = (2, n_tokens, pool.n_layers, heads, head_dim)
        pin = pool.device.type == "cuda"
        return cls(torch.zeros(shape, dtype=pool.dtype, pin_memory=pin), layout)

    def layer_major(self, kv: int) -> torch.Tensor:
        """K (`kv`=0) or V (1) as a `[layers, slots, heads, head_dim]` view."""
        half = self.tensor[kv]
        return half if self.layout is HostLayout.LAYER_FIRST else half.transpose(0, 1)

    @property
    def n_layers(self) -> int:
        return self.layer_major(0).shape[0]

    @property
    def n_slots(self) -> int:
        return self.layer_major(0).shape[1]

    def strides(self) -> tuple[int, int, int]:
        """Element strides of (K/V half, layer, token slot)."""
        view = self.layer_major(0)
        return (self.tensor.stride(0), view.stride(0), view.stride(1))
