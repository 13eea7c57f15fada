#!/usr/bin/env bash
# The GPU check in one command (bench/gpu_check.py says what it measures and how):
#   bash bench/gpu_check.sh            # GPU: a Qwen2.5-VL-3B-shaped random model, bf16, DeepSpeed ZeRO-2, ~5 min on an H100
#   bash bench/gpu_check.sh --tiny     # CPU: the same script at tiny size, under 2 minutes (CI runs it)
# On a machine without network (the lent GPU machines), packages missing there are installed from the wheelhouse
# `.whl/` that `bash bench/gpu_wheels.sh` fills here; figures go to $OUT (or runs/gpu_check/).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=${PYTHON:-python3}; fi
if ! "$PY" -c "import deepspeed, math_verify" 2>/dev/null; then
  if [ -d .whl ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  else
    echo "gpu_check: deepspeed or math-verify is missing and there is no .whl/ wheelhouse (bash bench/gpu_wheels.sh)" >&2
    exit 2
  fi
fi
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
exec "$PY" bench/gpu_check.py "$@"
