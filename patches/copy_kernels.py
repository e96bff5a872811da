"""Hooks on SGLang's live copies: HiCache host<->device KV and LoRA slot loads on our kernels.

With config ``copy_kernels: "triton"`` each AROUND hook first offers the copy to this process's
:class:`~scalesim.sglang.copy_kernels.CopyPath`; when it declines (the default ``"sglang"``, an
unsupported layout, a kernel failure) SGLang's own function runs with the same arguments. The
hooks never raise on their own account: SGLang's path is the fallback for everything.

Targets (SGLang 0.5.23): ``MHATokenToKVPoolHost.load_to_device_per_layer`` (host -> device,
one layer, on HiCache's load stream), ``MHATokenToKVPoolHost.backup_from_device_all_layer``
(device -> host, every layer, on the write stream) and ``sglang.srt.lora.utils.
copy_weight_into_buffer`` (one adapter weight into its slot view, imported by name into
``lora.mem_pool``, where ``HookRegistry`` rebinds it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from scalesim.sglang.copy_kernels import process_copy_path

# Feature probe: the arguments the hooks read by name; any other signature goes to SGLang.
_BACKUP_ARGUMENTS = frozenset({"host_indices", "device_indices", "io_backend"})
_LOAD_ARGUMENTS = _BACKUP_ARGUMENTS | {"layer_id", "is_draft"}


def around_load_to_device_per_layer(
    original: Callable[..., Any], host_pool: Any, *args: Any, **kwargs: Any
) -> Any:
    """AROUND ``MHATokenToKVPoolHost.load_to_device_per_layer``."""
    path = process_copy_path()
    call = _bind(original, host_pool, *args, **kwargs) if path.enabled else {}
    if call.keys() >= _LOAD_ARGUMENTS and path.load_kv_layer(
        host_pool,
        host_indices=call["host_indices"],
        device_indices=call["device_indices"],
        layer_id=call["layer_id"],
        io_backend=call["io_backend"],
        is_draft=call["is_draft"],
    ):
        return None
    return original(host_pool, *args, **kwargs)


def around_backup_from_device_all_layer(
    original: Callable[..., Any], host_pool: Any, *args: Any, **kwargs: Any
) -> Any:
    """AROUND ``MHATokenToKVPoolHost.backup_from_device_all_layer``."""
    path = process_copy_path()
    call = _bind(original, host_pool, *args, **kwargs) if path.enabled else {}
    if call.keys() >= _BACKUP_ARGUMENTS and path.backup_kv(
        host_pool,
        host_indices=call["host_indices"],
        device_indices=call["device_indices"],
        io_backend=call["io_backend"],
    ):
        return None
    return original(host_pool, *args, **kwargs)


def around_copy_weight_into_buffer(
    original: Callable[..., Any], buffer_view: torch.Tensor, weight: torch.Tensor
) -> None:
    """AROUND ``lora.utils.copy_weight_into_buffer(buffer_view, weight)``."""
    path = process_copy_path()
    if path.enabled and path.copy_lora_weight(buffer_view, weight):
        return
    original(buffer_view, weight)


def _bind(original: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """SGLang's arguments by name, defaults applied (callers pass some by keyword); empty when
    the call does not fit the signature (SGLang's own function then reports it)."""
    try:
        bound = inspect.signature(original).bind(*args, **kwargs)
    except TypeError:
        return {}
    bound.apply_defaults()
    return dict(bound.arguments)
