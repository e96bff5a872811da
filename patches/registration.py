"""Registers the hook table with SGLang's ``HookRegistry`` and verifies every target was patched.

Called by the plug-in (``scalesim.sglang.plugin.load``) in every SGLang process when ScaleSim is
enabled, and by the trace replay (``bench/replay/radix.py``) for ``TREE_HOOKS`` before it builds
a cache. SGLang's ``HookRegistry.apply_hooks`` only logs a target it fails to patch and carries
on; ScaleSim must not run half-patched, so :func:`register_and_verify` raises instead.

Invariant: registration is idempotent. A spec whose hook already wraps its target in this
process (an earlier call, the replay building many caches, the plug-in after the replay) is
neither registered nor applied again, so no target is ever wrapped twice by the same hook.
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
    """Register every spec not applied yet, let SGLang apply them now, then check each target.

    Specs already applied in this process (:func:`is_applied`) are skipped, as are repeats
    within ``specs``; calling this twice with the same table changes nothing the second time.

    Raises:
        HookTargetError: naming every target that does not resolve or was not patched.
    """
    pending: list[HookSpec] = []
    for spec in specs:
        if spec not in pending and not is_applied(spec):
            pending.append(spec)
    if not pending:
        return
    originals = {spec.target: resolve_target(spec.target) for spec in pending}
    for spec in pending:
        HookRegistry.register(spec.target, spec.hook, spec.hook_type)
    HookRegistry.apply_hooks()
    unpatched = [spec for spec in pending if not is_patched(spec, originals[spec.target])]
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


def is_applied(spec: HookSpec) -> bool:
    """True if ``spec.hook`` already replaces its target or is a layer of its wrapper chain.

    A feature probe of SGLang's ``HookRegistry``: each wrapper it builds keeps the wrapped
    function in ``__wrapped__`` and the hook in its closure. Reading the chain itself (not the
    registry's bookkeeping) stays right after ``HookRegistry.reset()``, which forgets what it
    applied but leaves the targets wrapped.
    """
    layer: object = resolve_target(spec.target)
    seen: set[int] = set()
    while layer is not None and id(layer) not in seen:
        if layer is spec.hook or _closes_over(layer, spec.hook):
            return True
        seen.add(id(layer))
        layer = getattr(layer, "__wrapped__", None)
    return False


def _closes_over(function: object, value: object) -> bool:
    for cell in getattr(function, "__closure__", None) or ():
        try:
            if cell.cell_contents is value:
                return True
        except ValueError:  # an empty cell (a free variable not bound yet)
            continue
    return False
