#!/usr/bin/env bash
# GPU checks in one go: kernel tests on CUDA, the KV-copy bandwidth benchmark and the
# cost-model calibration. Usage: bash scripts/gpu-check.sh OUT_DIR
# Needs torch, triton, transformers, pytest and hypothesis; works from an installed
# scalesim or, where none is installed (a bare GPU box), from this source tree.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: gpu-check.sh OUT_DIR}"
mkdir -p "$out"
python="${PYTHON:-python3}"
export PYTHONSAFEPATH=1 PYTHONUNBUFFERED=1
if ! "$python" -c "import scalesim.kernels, scalesim.bench" 2>/dev/null; then
    stage="$(mktemp -d)"
    cp -r "$root/scalesim" "$stage/scalesim"
    cp -r "$root/kernels" "$stage/scalesim/kernels"
    cp -r "$root/bench" "$stage/scalesim/bench"
    export PYTHONPATH="$stage${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
echo "[gpu-check] kernel tests"
"$python" -m pytest -q -p no:cacheprovider "$root/tests/kernels" > "$out/kernel-tests.log" 2>&1 || true
tail -3 "$out/kernel-tests.log"
echo "[gpu-check] KV copy bandwidth"
for variant in "--page-size 1 --layout layer_first" "--page-size 16 --layout page_first"; do
    # shellcheck disable=SC2086
    "$python" -m scalesim.bench.kernels $variant --repeats 20 --out-dir "$out"
done
echo "[gpu-check] cost-model calibration"
"$python" -m scalesim.bench.calibrate --out-dir "$out"
