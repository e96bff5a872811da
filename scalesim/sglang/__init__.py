"""Integration with SGLang: the only package that imports sglang internals."""
