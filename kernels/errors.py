"""Exceptions raised by the copy API before anything is launched.

Callers (the SGLang adapter, tests, the bench) catch `KernelArgumentError` to report a bad
call; its `argument` attribute names the offending parameter so messages stay precise.
"""


class KernelArgumentError(ValueError):
    """An argument to a copy function has the wrong dtype, shape, device or value."""

    def __init__(self, argument: str, problem: str) -> None:
        super().__init__(f"{argument}: {problem}")
        self.argument = argument
        self.problem = problem


class KernelUnavailableError(RuntimeError):
    """`Impl.TRITON` was forced but Triton cannot be imported."""
