"""The TRITON_INTERPRET=1 route: kernels decorated as interpreted functions still copy right.

Runs in a subprocess because the variable only takes effect before `@triton.jit` runs, and
setting it in this process would leak into every later test.
"""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import torch
from scalesim.kernels import HostLayout, Impl, KVDevicePool, KVHostBuffer, Launch, gather_kv
from scalesim.kernels import triton_kernels
from triton.runtime.interpreter import InterpretedFunction

assert isinstance(triton_kernels.kv_copy_kernel, InterpretedFunction)
layers = [torch.randn(24, 3, 5).to(torch.float16) for _ in range(4)]
pool = KVDevicePool.from_layers(layers[:2], layers[2:], page_size=4)
hosts = []
for impl in (Impl.TORCH, Impl.TRITON):
    host = KVHostBuffer.allocate(pool, n_tokens=12, layout=HostLayout.PAGE_FIRST)
    host.tensor.fill_(float("nan"))
    pages = torch.tensor([5, 0]), torch.tensor([1, 2])
    gather_kv(pool, host, device_pages=pages[0], host_pages=pages[1], launch=Launch(impl=impl))
    hosts.append(host.tensor.view(torch.int16))
print(torch.equal(hosts[0], hosts[1]))
"""


def test_gather_under_triton_interpret_env() -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
