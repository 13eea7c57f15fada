#!/usr/bin/env bash
# One curriculum phase, callable alone:  recipes/phase.sh fra|cmra|mre DATA.jsonl INIT_DIR OUT_DIR [extra train-phase args]
# Uses recipes/phases/<phase>.json (paper defaults; CONFIG=FILE picks another, e.g. the ablations run the MRE data view
# with FRA's settings); resumes when OUT_DIR already holds checkpoints; skips when
# OUT_DIR/final exists. GPUs and nodes come from NPROC, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT (see launch.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
phase=${1:?phase: fra, cmra or mre}; data=${2:?records JSONL}; init=${3:?init model directory}; out=${4:?run directory}
shift 4
if [ -f "$out/final/config.json" ]; then
  echo "phase $phase: $out/final exists; skipping"
  exit 0
fi
resume=()
if compgen -G "$out/checkpoints/step-*" > /dev/null; then resume=(--resume); fi
exec "$here/launch.sh" train-phase --config "${CONFIG:-$here/phases/$phase.json}" --phase "$phase" --data "$data" \
  --init "$init" --out "$out" "${resume[@]}" "$@"
