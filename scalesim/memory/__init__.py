"""Per-agent GPU/host memory resources and the planner that orders eviction and prefetch.

Pure Python.
"""

from .index import ResourceIndex
from .plan import EvictionPlan, PrefetchPlan, PrefetchRequest, Ranked
from .planner import MemoryPlanner
from .resource import Resource, Tier

__all__ = [
    "EvictionPlan",
    "MemoryPlanner",
    "PrefetchPlan",
    "PrefetchRequest",
    "Ranked",
    "Resource",
    "ResourceIndex",
    "Tier",
]
