"""Workload generators, trace replay and benchmarks."""
