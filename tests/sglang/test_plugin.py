"""The plug-in contract: entry point, version gate, no-op when disabled, every hook verified.

Each scenario runs ``load_plugins()`` in a fresh interpreter, as SGLang's spawned processes do,
with the environment ``scalesim serve`` builds (SGLang's hook registry is process-global).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

from scalesim import SGLANG_VERSION
from scalesim.config import CONFIG_ENV_VAR
from scalesim.serve import plan_serve
from scalesim.sglang.plugin import PluginRefusedError, check_sglang_version

_TIMEOUT_S = 300


def _run(code: str, serve_args: list[str], *, scalesim: bool = True) -> dict[str, object]:
    """Run ``code`` after ``load_plugins()`` in a CPU-mode SGLang process; return its JSON."""
    env = dict(plan_serve(["--device", "cpu", *serve_args], environ={}, cuda_available=False).env)
    if not scalesim:
        del env[CONFIG_ENV_VAR]
    script = "import json\n" + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_entry_point_is_declared() -> None:
    points = metadata.entry_points(group="sglang.srt.plugins")
    assert {point.name: point.value for point in points}["scalesim"] == (
        "scalesim.sglang.plugin:load"
    )


def test_version_gate_names_the_supported_version() -> None:
    check_sglang_version(SGLANG_VERSION)
    with pytest.raises(PluginRefusedError, match=r"needs sglang==0\.5\.23.*0\.5\.22"):
        check_sglang_version("0.5.22")


def test_plugin_changes_nothing_without_scalesim_config() -> None:
    result = _run(
        """
        import sglang.srt.mem_cache.utils as utils
        from scalesim.sglang import cpu_compat
        from sglang.srt.arg_groups.choices import RADIX_EVICTION_POLICY_CHOICES
        from sglang.srt.plugins import load_plugins
        original = utils.get_eviction_strategy
        load_plugins()
        print(json.dumps({
            "same": utils.get_eviction_strategy is original,
            "choice": "scalesim" in RADIX_EVICTION_POLICY_CHOICES,
            "cpu_compat": cpu_compat.is_applied(),
        }))
        """,
        [],
        scalesim=False,
    )
    assert result == {"same": True, "choice": False, "cpu_compat": False}


@pytest.fixture(scope="module")
def enabled_process() -> dict[str, object]:
    """One SGLang process with ScaleSim enabled: hook state and policy lookups after loading."""
    return _run(
        """
        from sglang.srt.plugins import load_plugins
        from scalesim.patches.registration import is_patched, resolve_target
        from scalesim.patches.table import HOOKS
        originals = {spec.target: resolve_target(spec.target) for spec in HOOKS}
        load_plugins()
        from sglang.srt.arg_groups.choices import RADIX_EVICTION_POLICY_CHOICES
        from sglang.srt.mem_cache.utils import get_eviction_strategy
        from scalesim.config import ConfigError
        try:
            get_eviction_strategy("scalesim", {"prefetch_windw": 3})
            unknown_key = "accepted"
        except ConfigError as err:
            unknown_key = str(err)
        strategy = get_eviction_strategy("scalesim", {"horizon": 5.0, "prefetch_window": 3})
        print(json.dumps({
            "config": [strategy.runtime.config.horizon, strategy.runtime.config.prefetch_window],
            "unknown_key": unknown_key,
            "patched": {s.target: is_patched(s, originals[s.target]) for s in HOOKS},
            "choice": RADIX_EVICTION_POLICY_CHOICES.count("scalesim"),
            "scalesim": type(get_eviction_strategy("scalesim", {"horizon": 5.0})).__name__,
            "lru": type(get_eviction_strategy("lru")).__name__,
        }))
        """,
        [],
    )


def test_every_hook_target_resolves_and_is_patched(enabled_process: dict[str, object]) -> None:
    from scalesim.patches.table import HOOKS

    assert HOOKS
    assert enabled_process["patched"] == {spec.target: True for spec in HOOKS}


def test_scalesim_policy_is_registered_and_others_stay_sglangs(
    enabled_process: dict[str, object],
) -> None:
    assert enabled_process["choice"] == 1
    assert enabled_process["scalesim"] == "ScaleSimStrategy"
    assert enabled_process["lru"] == "LRUStrategy"


def test_scalesim_policy_config_goes_through_the_hook(enabled_process: dict[str, object]) -> None:
    """SGLang's own ``get_eviction_strategy`` (hooked) builds the runtime from the JSON keys
    and refuses an unknown key by name."""
    assert enabled_process["config"] == [5.0, 3]
    assert "prefetch_windw" in str(enabled_process["unknown_key"])


def test_disabled_scalesim_registers_no_hooks_but_keeps_cpu_mode() -> None:
    result = _run(
        """
        import torch
        from scalesim.sglang import cpu_attention, cpu_compat
        from scalesim.patches.registration import resolve_target
        from scalesim.patches.table import HOOKS
        from sglang.srt.arg_groups.choices import RADIX_EVICTION_POLICY_CHOICES
        from sglang.srt.plugins import load_plugins
        from sglang.srt.plugins.hook_registry import HookRegistry
        originals = {spec.target: resolve_target(spec.target) for spec in HOOKS}
        load_plugins()
        pinned = torch.empty(2, pin_memory=True)
        print(json.dumps({
            "unchanged": all(resolve_target(t) is fn for t, fn in originals.items()),
            "choice": "scalesim" in RADIX_EVICTION_POLICY_CHOICES,
            "scalesim_hooks": [
                target for target, hooks in HookRegistry._hooks.items() for _, hook, _ in hooks
                if getattr(hook, "__module__", "").startswith("scalesim")
            ],
            "cpu_compat": cpu_compat.is_applied(),
            "cpu_attention": cpu_attention.is_installed(),
            "host_register": torch.cuda.cudart().cudaHostRegister(pinned.data_ptr(), 8, 0),
        }))
        """,
        ["--scalesim-disable"],
    )
    assert result == {
        "unchanged": True,
        "choice": False,
        "scalesim_hooks": [],
        "cpu_compat": True,
        "cpu_attention": True,  # stock CPU servers attend like ScaleSim's: a fair comparison
        "host_register": 0,
    }


def test_cpu_attention_sglang_keeps_sglangs_own() -> None:
    result = _run(
        """
        from scalesim.sglang import cpu_attention, cpu_compat
        from sglang.srt.plugins import load_plugins
        load_plugins()
        print(json.dumps({
            "cpu_compat": cpu_compat.is_applied(),
            "cpu_attention": cpu_attention.is_installed(),
        }))
        """,
        ["--scalesim-disable", "--scalesim-cpu-attention", "sglang"],
    )
    assert result == {"cpu_compat": True, "cpu_attention": False}


def test_plugin_refuses_to_load_on_another_sglang_version() -> None:
    """The version gate, as SGLang runs it: load() in a process whose sglang reports 0.5.22."""
    env = dict(plan_serve(["--device", "cpu"], environ={}, cuda_available=False).env)
    script = textwrap.dedent(
        """
        from importlib import metadata
        real_version = metadata.version
        metadata.version = lambda name: "0.5.22" if name == "sglang" else real_version(name)
        from scalesim.sglang.plugin import load
        load()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=_TIMEOUT_S
    )
    assert done.returncode != 0
    assert "refused to load" in done.stderr and "needs sglang==0.5.23" in done.stderr


def test_unpatchable_target_fails_loudly() -> None:
    """SGLang only logs a target it cannot patch; verification must raise instead."""
    result = _run(
        """
        from sglang.srt.plugins.hook_registry import HookType
        from scalesim.patches.registration import HookTargetError, register_and_verify
        from scalesim.patches.spec import HookSpec, Subsystem
        spec = HookSpec(Subsystem.MEM_CACHE, "builtins.str.upper", lambda o, *a: o(*a),
                        HookType.AROUND, "a builtin type cannot be patched")
        missing = HookSpec(Subsystem.MEM_CACHE, "sglang.srt.mem_cache.utils.no_such_fn",
                           lambda o, *a: o(*a), HookType.AROUND, "does not exist")
        errors = []
        for specs in ([spec], [missing]):
            try:
                register_and_verify(specs)
            except HookTargetError as err:
                errors.append(str(err))
        print(json.dumps(errors))
        """,
        [],
        scalesim=False,
    )
    assert isinstance(result, list)
    assert "unpatched: builtins.str.upper" in result[0]
    assert "no_such_fn does not resolve" in result[1]
