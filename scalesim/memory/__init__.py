"""Per-agent GPU/host memory resources and the planner that orders eviction and prefetch. Pure Python."""
