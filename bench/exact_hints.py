"""Rewrite a trace's hints as exact next-call times: hint quality apart from the policy.

Replaying the rewritten trace shows what ScaleSim's ranking achieves with perfect
invocation distances; the gap between that and the original trace is the cost of the
simulation's estimates, the gap to ``belady`` what ranking agents (not prefix chains)
leaves. Each agent is hinted at step 0 with its first call (unless it calls at step 0) and, at
each step it calls at, with its first call at a later step (null after its last): a hint of step
s comes after step s's calls. An analysis tool: it writes a trace, asserts nothing.

Run: ``python -m scalesim.bench.exact_hints IN.jsonl OUT.jsonl``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .hint_noise import EXACT, with_hints
from .trace import Trace, read_trace, write_trace


def exact_hints(trace: Trace) -> Trace:
    """``trace`` with its hints replaced by each agent's true next call step."""
    return with_hints(trace, EXACT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", type=Path)
    parser.add_argument("output", type=Path)
    args = parser.parse_args(argv)
    rewritten = exact_hints(read_trace(args.trace))
    write_trace(args.output, rewritten)
    print(f"{args.output}: {len(rewritten.calls)} calls, {len(rewritten.hints)} exact hints")


if __name__ == "__main__":
    main()
