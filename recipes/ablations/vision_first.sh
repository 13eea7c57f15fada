#!/usr/bin/env bash
# RQ1, the paper's Figure 3: which data should the FIRST RL phase use? Text RL is the curriculum's FRA (DeepScaleR,
# text only); Vision RL runs the same first phase, with FRA's settings (recipes/phases/fra.json), on the multimodal
# data without captions (ViRL39K, MRE view) from the base model. Both are evaluated on the multimodal benchmarks, and
# `infimmr plot --figure figure3` draws benchmark accuracy (validation during training) and mean response length
# (tokens) against steps, one line per run.
#   WORK=runs/curriculum MODEL=... bash recipes/ablations/vision_first.sh    (after recipes/curriculum.sh)
# Environment: as recipes/curriculum.sh (WORK, MODEL, TRAIN_ARGS, EVAL_ARGS, VAL_BENCH, VAL_LIMIT, NPROC, ...).
# Every step is skipped when done, so a rerun continues where it stopped.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need "$WORK/fra/final/config.json" "the Text RL run is the curriculum's FRA"
OUT=$WORK/ablations/vision_first

say "RQ1: Vision RL as the first phase (FRA settings, multimodal data without captions)"
CONFIG="$here/phases/fra.json" "$here/phase.sh" mre "$D/mm.clean.jsonl" "$MODEL" "$OUT" "${val_args[@]}" "${train_args[@]}"

say "RQ1: eval of Text RL and Vision RL on the multimodal benchmarks"
eval_run fra "$WORK/fra/final"      # the curriculum's own eval folder: what it already scored is reused
eval_run vision_rl "$OUT/final"

say "RQ1: Figure 3 and the table"
$INFIMMR plot --figure figure3 "text_rl=$WORK/fra" "vision_rl=$OUT" --out "$WORK/ablations/plots"
$INFIMMR compare "text_rl=$WORK/eval/fra" "vision_rl=$WORK/eval/vision_rl" --out "$WORK/ablations/vision_first_table"
echo "done: $WORK/ablations/plots/figure3.png, $WORK/ablations/vision_first_table/compare.md"
