#!/usr/bin/env bash
# Set up (idempotently), then lint, type-check and run the whole test suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
# The repo root holds a kernels/ folder (shipped as scalesim.kernels); keep the working directory
# off sys.path so it never shadows the installed `kernels` package that transformers probes.
export PYTHONSAFEPATH=1
cd "$root"
bin="$root/.venv/bin"
echo "[test] ruff"
"$bin/ruff" check .
"$bin/ruff" format --check .
echo "[test] mypy"
"$bin/mypy" --strict scalesim/distance scalesim/memory
"$bin/mypy" scalesim kernels patches bench
echo "[test] pytest"
exec "$bin/python" -m pytest "$@"
