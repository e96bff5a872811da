#!/usr/bin/env bash
# The main job: set up (idempotently) and run the multi-agent demo against a local server.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/scalesim" demo "$@"
