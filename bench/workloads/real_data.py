"""Where the real data sets behind the ``village`` and ``social`` workloads live.

Who calls it: ``village_data`` and ``social_data`` (to open their files), ``bench/cli.py``
(``--data-dir``) and the tests (to skip when the data is absent). The data is not part of
the repository: it sits in ``shared/data`` beside the checkout (``<repo>/../shared/data``),
or wherever ``--data-dir`` or ``$SCALESIM_DATA_DIR`` points. Nothing here reads a file;
:func:`data_file` only resolves a path and fails with a message that says how to fix it.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "SCALESIM_DATA_DIR"
GENERATIVE_AGENTS = "generative_agents"
OASIS = "oasis"

# bench/workloads/real_data.py -> the repository root is two folders above bench/.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """``$SCALESIM_DATA_DIR`` if set, else ``shared/data`` beside the repository checkout.

    Resolved from this file, not the working directory, so ``scalesim bench gen`` finds the
    data from any folder as long as the package runs from a checkout (editable install).
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override)
    return _REPO_ROOT.parent / "shared" / "data"


def data_file(data_dir: Path | None, dataset: str, name: str) -> Path:
    """The path of file ``name`` of ``dataset`` under ``data_dir`` (default: above).

    Raises:
        FileNotFoundError: the file is missing; the message names the path, the data set
            and the two ways to point at another copy.
    """
    root = default_data_dir() if data_dir is None else data_dir
    path = root / dataset / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: the {dataset!r} data set is needed for this workload; "
            f"pass --data-dir DIR (a folder holding {dataset}/) or set ${DATA_DIR_ENV}"
        )
    return path


def has_dataset(data_dir: Path | None, dataset: str) -> bool:
    """Whether ``dataset``'s folder exists under ``data_dir`` (default: above)."""
    root = default_data_dir() if data_dir is None else data_dir
    return (root / dataset).is_dir()
