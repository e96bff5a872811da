"""Writing one benchmark's results: JSON, a markdown table and a PNG beside each other.

Who calls it: the sweeps (``grid.py``, ``hint_sweep.py``, ``adapter_sweep.py``, ``sweep.py``),
which each know their own table and plot; this module only knows the file layout.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any


def write(
    document: dict[str, Any],
    stem: Path,
    *,
    markdown: Callable[[dict[str, Any], str], str],
    plot: Callable[..., None],
) -> None:
    """``stem``.json (the document), .md (``markdown(document, name)``) and .png."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    stem.with_suffix(".md").write_text(markdown(document, stem.name), encoding="utf-8")
    plot(document, stem.with_suffix(".png"), title=stem.name)


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the file-only backend (benchmarks run on headless machines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
