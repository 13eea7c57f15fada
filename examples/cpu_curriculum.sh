#!/usr/bin/env bash
# The whole chain on a 2-core CPU with the tiny model and bundled data. Grows with each stage the project gains.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${WORK:-runs/cpu_curriculum}
INFIMMR=${INFIMMR:-.venv/bin/infimmr}
mkdir -p "$WORK"
[ -f "$WORK/tiny/config.json" ] || $INFIMMR tiny-model "$WORK/tiny"
