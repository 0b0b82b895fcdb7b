#!/usr/bin/env bash
# GPU check of the torch trainer (issue 18): AMP speed-up, trials per GPU with fractional-GPU trials, and GPU
# utilisation from nvidia-smi, printed as small tables (benchmarks/torch/gpu_check.py says how each is measured).
# About 3-5 minutes on one H100-class GPU; run it whenever a GPU machine is available:
#     scripts/gpu-check.sh [--trials 8] [--epochs 3] [--fractions 1 0.5 0.25]
# Without a CUDA GPU it prints one line saying so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
if ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu-check: no GPU on this machine (no nvidia-smi on PATH); nothing measured."
    exit 0
fi
exec "$PYTHON" -m benchmarks.torch.gpu_check "$@"
