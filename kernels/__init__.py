"""Triton kernels for the asynchronous KV and LoRA copies, each with a torch reference."""
