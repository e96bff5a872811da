"""Registers the hook table with SGLang's ``HookRegistry`` and verifies every target was patched.

Called by the plug-in (``scalesim.sglang.plugin.load``) in every SGLang process when ScaleSim is
enabled. SGLang's ``HookRegistry.apply_hooks`` only logs a target it fails to patch and carries
on; ScaleSim must not run half-patched, so :func:`register_and_verify` raises instead.
"""

from __future__ import annotations

import inspect
import pkgutil
from collections.abc import Sequence

from sglang.srt.plugins.hook_registry import HookRegistry

from .spec import HookSpec


class HookTargetError(RuntimeError):
    """A hook target that does not resolve or was left unpatched after registration."""


def register_and_verify(specs: Sequence[HookSpec]) -> None:
    """Register every spec, let SGLang apply them now, then check each target really changed.

    Raises:
        HookTargetError: naming every target that does not resolve or was not patched.
    """
    originals = {spec.target: resolve_target(spec.target) for spec in specs}
    for spec in specs:
        HookRegistry.register(spec.target, spec.hook, spec.hook_type)
    HookRegistry.apply_hooks()
    unpatched = [spec for spec in specs if not is_patched(spec, originals[spec.target])]
    if unpatched:
        lines = "; ".join(f"{spec.target} ({spec.why})" for spec in unpatched)
        raise HookTargetError(f"SGLang left ScaleSim hook target(s) unpatched: {lines}")


def resolve_target(target: str) -> object:
    """The object a dotted target names now (functions unwrapped from bound methods)."""
    obj_path, _, attr_name = target.rpartition(".")
    try:
        owner = pkgutil.resolve_name(obj_path)
        raw = inspect.getattr_static(owner, attr_name)
    except (ImportError, AttributeError, ValueError) as err:
        raise HookTargetError(f"hook target {target} does not resolve: {err}") from err
    if isinstance(raw, (classmethod, staticmethod)):
        return raw.__func__
    return raw


def is_patched(spec: HookSpec, original: object) -> bool:
    """True once the target holds the hook itself (class REPLACE) or a wrapper of ``original``."""
    current = resolve_target(spec.target)
    if current is spec.hook:
        return True
    return current is not original and inspect.unwrap(current) is original  # type: ignore[arg-type]
