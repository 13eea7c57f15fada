#!/usr/bin/env bash
# Set up .venv on a CPU machine: the torch/torchvision pair that makes the stock Qwen2.5-VL processor work
# (see ../shared/CPU-NOTES.md), then this project with its test tools. Safe to rerun: pip skips what is there.
# GPU machines: install your own CUDA torch, then `pip install -e '.[vllm]'`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "set-up done: $(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
