"""Triton kernels for the asynchronous KV and LoRA copies, each with a torch reference."""

from .errors import KernelArgumentError, KernelUnavailableError
from .kv_buffers import SUPPORTED_DTYPES, HostLayout, KVDevicePool, KVHostBuffer
from .kv_copy import gather_kv, scatter_kv
from .kv_reference import page_tokens
from .launch import CompletedCopy, CopyEvent, Impl, Launch, triton_available
from .lora_copy import load_lora_a, load_lora_b

__all__ = [
    "SUPPORTED_DTYPES",
    "CompletedCopy",
    "CopyEvent",
    "HostLayout",
    "Impl",
    "KVDevicePool",
    "KVHostBuffer",
    "KernelArgumentError",
    "KernelUnavailableError",
    "Launch",
    "gather_kv",
    "load_lora_a",
    "load_lora_b",
    "page_tokens",
    "scatter_kv",
    "triton_available",
]
