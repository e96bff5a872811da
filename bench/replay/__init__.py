"""Trace replay on SGLang's own radix cache: one engine, pluggable policies, a host tier."""
