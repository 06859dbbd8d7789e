#!/usr/bin/env bash
# One command for a CUDA machine (one H100 or H200, under 8 minutes): throughput of every row at ViT-B/16 224 px
# batch 64 bf16 (cuDNN benchmark mode, torch.compile rows), the prompters' convolutions direct against FFT, a
# one-epoch quickstart on CUDA with evaluate, ONNX export and predict, all in one text report. Without CUDA it says
# so, runs the same steps as a CPU smoke test and exits 0. Usage, from anywhere:
#   bash benchmarks/gpu.sh [REPORT]          (default: gpu-report.txt in the current folder)
set -euo pipefail
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec python "$here/gpu_report.py" --out "${1:-gpu-report.txt}"
