#!/usr/bin/env bash
# The main job: set up (idempotently) and run the multi-agent demo against a local server.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
# The repo root holds a kernels/ folder (shipped as scalesim.kernels); keep the working directory
# off sys.path so it never shadows the installed `kernels` package that transformers probes.
export PYTHONSAFEPATH=1
exec "$root/.venv/bin/scalesim" demo "$@"
