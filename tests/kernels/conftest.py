"""Fixtures for the kernel tests.

Triton kernels run on CPU tensors through Triton's interpreter: `scalesim.kernels` hands
CPU launches to `InterpretedFunction` itself, so these tests need no environment variable
(and set none, which would turn every later `@triton.jit` in the session, SGLang's
included, into interpreted functions). `test_interpret_env.py` covers the
`TRITON_INTERPRET=1` route in a subprocess.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def generator() -> torch.Generator:
    """A fixed-seed generator: fresh random data per test, reproducible across runs."""
    return torch.Generator().manual_seed(1234)
