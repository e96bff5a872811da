"""How a copy is launched: which implementation, on which stream, and what it returns.

Every public copy function takes a `Launch` and returns a `CopyEvent`. On CUDA the event is
a `torch.cuda.Event` recorded on the launch stream after the copy; on CPU the copy has
finished when the call returns and a `CompletedCopy` stands in, with the same methods, so
callers can wait on either without branching.
"""

from __future__ import annotations

import enum
import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .errors import KernelArgumentError, KernelUnavailableError


class Impl(enum.Enum):
    """Which implementation runs a copy.

    AUTO picks TRITON for CUDA tensors when Triton imports and TORCH otherwise. TRITON on
    CPU tensors runs the kernel through Triton's interpreter (for tests, slow).
    """

    AUTO = "auto"
    TRITON = "triton"
    TORCH = "torch"


@dataclass(frozen=True)
class Launch:
    """Where and how to run a copy; the default runs AUTO on the current stream."""

    impl: Impl = Impl.AUTO
    stream: torch.cuda.Stream | None = None


DEFAULT_LAUNCH = Launch()


class CompletedCopy:
    """Event stand-in for copies that finished synchronously (CPU tensors)."""

    def query(self) -> bool:
        return True

    def synchronize(self) -> None:
        return None

    def wait(self, stream: torch.cuda.Stream | None = None) -> None:
        return None


CopyEvent = torch.cuda.Event | CompletedCopy


def triton_available() -> bool:
    """True when the `triton` package can be imported."""
    return importlib.util.find_spec("triton") is not None


def resolve_impl(impl: Impl, device: torch.device) -> Impl:
    """Turn AUTO into a concrete implementation for tensors on `device`."""
    if impl is Impl.AUTO:
        return Impl.TRITON if device.type == "cuda" and triton_available() else Impl.TORCH
    if impl is Impl.TRITON and not triton_available():
        raise KernelUnavailableError("Impl.TRITON was requested but triton is not installed")
    return impl


@contextmanager
def on_stream(launch: Launch, device: torch.device) -> Iterator[None]:
    """Make `launch.stream` current for CUDA work; reject a stream for CPU tensors."""
    if device.type != "cuda":
        if launch.stream is not None:
            raise KernelArgumentError("launch", "a CUDA stream was given for CPU tensors")
        yield
        return
    stream = launch.stream or torch.cuda.current_stream(device)
    with torch.cuda.device(device), torch.cuda.stream(stream):
        yield


def completion_event(device: torch.device) -> CopyEvent:
    """Record an event on the current stream of `device` (inside `on_stream`)."""
    if device.type != "cuda":
        return CompletedCopy()
    event = torch.cuda.Event()  # type: ignore[no-untyped-call]
    event.record(torch.cuda.current_stream(device))
    return event
