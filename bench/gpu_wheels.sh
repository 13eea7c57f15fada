#!/usr/bin/env bash
# Fill `.whl/` (git-ignored) with the wheels the lent GPU machines lack (no network there; Python 3.12, torch 2.11,
# transformers 5.17): DeepSpeed (built here from its sdist: pure Python, its ops compile there on first use) and
# math-verify with their needs. bench/gpu_check.sh installs them with --no-index; the folder travels with `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .whl
# Pure-Python or cp312 manylinux wheels, exactly one version each (two versions of one package stop the install there).
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  "math-verify==$("$PY" -c 'import importlib.metadata as m; print(m.version("math-verify"))')" \
  "latex2sympy2_extended==$("$PY" -c 'import importlib.metadata as m; print(m.version("latex2sympy2_extended"))')" \
  "antlr4-python3-runtime==4.13.2" hjson "pydantic>=2,<3" pydantic-core annotated-types typing-inspection \
  typing-extensions jsonlines
ds=$("$PY" -c 'import importlib.metadata as m; print(m.version("deepspeed"))')
ls .whl/deepspeed-"$ds"-*.whl >/dev/null 2>&1 || DS_BUILD_OPS=0 "$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl "deepspeed==$ds"
du -sh .whl; ls .whl
