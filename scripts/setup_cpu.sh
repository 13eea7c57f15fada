#!/usr/bin/env bash
# Set up .venv on a CPU machine: torch 2.14.1 + torchvision 0.29.1 (the pair that makes the stock Qwen2.5-VL processor
# work), then this project with its test tools. Safe to rerun: pip skips what is there.
# What it installs: from PyPI that pair is the CUDA build (about 5.5 GB in the venv; it runs on the CPU); on our CI
# machines pip finds it on local disk in under a minute, elsewhere the download takes minutes. With a CPU-only wheel
# index at hand, choose it:  TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu bash scripts/setup_cpu.sh
# (TORCH_SPEC overrides the pinned pair, e.g. "torch==2.14.1+cpu torchvision==0.29.1+cpu").
# GPU machines: install your own CUDA torch, then `pip install -e '.[vllm]'`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
read -r -a torch_spec <<< "${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
index=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then index=(--index-url "$TORCH_INDEX_URL"); fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q "${index[@]}" "${torch_spec[@]}"
.venv/bin/python -m pip install -q -e ".[dev]"
echo "set-up done: $(.venv/bin/python -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
