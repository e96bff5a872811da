"""ScaleSim: invocation-distance memory management for multi-agent simulations on SGLang.

The core (``scalesim.distance``, ``scalesim.memory``) is pure Python; only
``scalesim.sglang`` imports SGLang, and only ``scalesim.patches`` changes its behaviour.
"""

__version__ = "0.1.0"

#: The one SGLang release whose internals the hooks in ``scalesim.patches`` target.
SGLANG_VERSION = "0.5.23"
