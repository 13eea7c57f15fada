#!/usr/bin/env bash
# RQ2, the paper's Table 2: what should the SECOND phase train on? From the curriculum's FRA model, CapFre continues on
# the original multimodal data WITHOUT captions (the MRE data view straight after FRA, with CMRA's settings from
# recipes/phases/cmra.json), next to the curriculum's caption-augmented CMRA; all three are evaluated on the multimodal
# benchmarks and tabulated in Table 2's shape (FRA, CMRA, CapFre rows; the paper's rows beside them).
#   WORK=runs/curriculum MODEL=... bash recipes/ablations/capfre.sh    (after recipes/curriculum.sh)
# Environment: as recipes/curriculum.sh. Every step is skipped when done, so a rerun continues where it stopped.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need "$WORK/fra/final/config.json" "CapFre starts from the curriculum's FRA model"
need "$WORK/cmra/final/config.json" "Table 2 compares CapFre with the curriculum's CMRA"
OUT=$WORK/ablations/capfre

say "RQ2: CapFre, phase 2 on the multimodal data without captions (from FRA)"
CONFIG="$here/phases/cmra.json" "$here/phase.sh" mre "$D/mm.clean.jsonl" "$WORK/fra/final" "$OUT" "${val_args[@]}" \
  "${train_args[@]}"

say "RQ2: eval of FRA, CMRA and CapFre on the multimodal benchmarks"
eval_run fra "$WORK/fra/final"
eval_run cmra "$WORK/cmra/final"
eval_run capfre "$OUT/final"

say "RQ2: Table 2"
$INFIMMR compare "fra=$WORK/eval/fra" "cmra=$WORK/eval/cmra" "capfre=$WORK/eval/capfre" --table 2 --with-paper \
  --out "$WORK/ablations/table2"
echo "done: $WORK/ablations/table2/compare.md"
