#!/usr/bin/env bash
# One command for a CUDA machine (one H100 or H200, under 8 minutes): CUDA checked with a real kernel first (exit 1,
# nothing run, when a GPU is expected but unusable), then every method of Table 1 at ViT-B/16 224 px bf16 (train
# images/s, peak memory, host syncs; InsVP with and without torch.compile; the release preset as it trains), the data
# pipeline beside the model, a 2-process DDP run on one GPU, a quickstart epoch with evaluate, ONNX export and
# predict, ours against the release as published, the prompters' convolutions: one text report. Without a GPU it
# says so, runs the same steps as a CPU smoke test and exits 0. Usage, from anywhere:
#   bash benchmarks/gpu.sh [REPORT]          (default: gpu-report.txt in the current folder)
# PYTHON picks the interpreter (default python3: the GPU machine has no `python`).
set -euo pipefail
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "${PYTHON:-python3}" "$here/gpu_report.py" --out "${1:-gpu-report.txt}"
