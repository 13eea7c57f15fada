#!/usr/bin/env bash
# The Infi-MMR curriculum end to end:
#   prepare -> classify -> caption -> decontam -> train FRA -> CMRA -> MRE -> export -> eval (base and each phase)
#   -> compare table + plots.
# Every step is skipped when its output is already complete, so rerunning the script continues where it stopped
# (a killed classify/caption/eval resumes inside the step; a killed phase resumes from its newest checkpoint).
#
# Inputs (environment):
#   RAW             raw exports: RAW/deepscaler/<json>, RAW/virl39k/{39Krelease.parquet,images/}, RAW/bench/<bench>/...
#                   (the layouts the README lists; `infimmr demo-data RAW` writes toy ones). Unset: `prepare` downloads
#                   each source's files from its Hugging Face dataset into the HF cache (HF_HUB_OFFLINE=1: cache only)
#   MODEL           base model: a directory or a hub id (Qwen/Qwen2.5-VL-3B-Instruct)
#   CLASSIFY_MODEL  image-type model (default Qwen/Qwen2.5-VL-7B-Instruct; hub ids are fetched into the HF cache)
#   CAPTION_MODEL   captioner (default U4R/OmniCaptioner)
#   EMBED_MODEL     GME embedder, a directory or hub id (Alibaba-NLP/gme-Qwen2-VL-2B-Instruct); EMBED_MODEL=none (the
#                   default) runs the text rules only
#   WORK            where everything goes (default runs/curriculum)
#   BENCHES         benchmarks to evaluate (default: all five)
#   VAL_BENCH       prepared benchmark each phase validates on while it trains (default mathvista when in BENCHES;
#                   none = no validation); VAL_LIMIT its first N items (default 64). Monitoring only: no model selection.
#   NPROC NNODES NODE_RANK MASTER_ADDR MASTER_PORT   training launch (see launch.sh)
#   CLASSIFY_ARGS CAPTION_ARGS DECONTAM_ARGS TRAIN_ARGS EVAL_ARGS   extra arguments per stage (word-split)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
RAW=${RAW:-}
: "${MODEL:?set MODEL to the base model (a directory or a hub id)}"
WORK=${WORK:-runs/curriculum}
CLASSIFY_MODEL=${CLASSIFY_MODEL:-Qwen/Qwen2.5-VL-7B-Instruct}
CAPTION_MODEL=${CAPTION_MODEL:-U4R/OmniCaptioner}
EMBED_MODEL=${EMBED_MODEL:-none}
BENCHES=${BENCHES:-"math500 mathverse mathvision mathvista olympiadbench"}
INFIMMR=${INFIMMR:-infimmr}
read -r -a classify_args <<< "${CLASSIFY_ARGS:-}"
read -r -a caption_args <<< "${CAPTION_ARGS:-}"
read -r -a decontam_args <<< "${DECONTAM_ARGS:-}"
read -r -a train_args <<< "${TRAIN_ARGS:-}"
read -r -a eval_args <<< "${EVAL_ARGS:-}"
D=$WORK/data
mkdir -p "$D"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# done_or_run OUTPUT CMD...: run CMD unless OUTPUT exists (every stage writes its output atomically, last).
done_or_run() { local out=$1; shift; if [ -e "$out" ]; then echo "skip: $out exists"; else "$@"; fi; }

# raw_in SUB: `--in RAW/SUB` when RAW is set; nothing otherwise (prepare then downloads from the hub)
raw_in() { in_args=(); if [ -n "$RAW" ]; then in_args=(--in "$RAW/$1"); fi; }

say "prepare$( [ -n "$RAW" ] || echo ' (from the Hugging Face Hub)')"
raw_in deepscaler
done_or_run "$D/deepscaler.jsonl" $INFIMMR prepare --from deepscaler "${in_args[@]}" --out "$D/deepscaler.jsonl"
raw_in virl39k
done_or_run "$D/virl39k.jsonl" $INFIMMR prepare --from virl39k "${in_args[@]}" --out "$D/virl39k.jsonl"
bench_flags=()
for b in $BENCHES; do
  raw_in "bench/$b"
  done_or_run "$D/bench-$b.jsonl" $INFIMMR prepare --from "$b" "${in_args[@]}" --out "$D/bench-$b.jsonl"
  bench_flags+=(--bench "$D/bench-$b.jsonl")
done

# Validation during training: the phases are watched on the same held-out items, so the curves join up across phases.
VAL_BENCH=${VAL_BENCH:-$(case " $BENCHES " in *" mathvista "*) echo mathvista;; *) echo none;; esac)}
val_args=()
if [ "$VAL_BENCH" != none ]; then
  val_args=(--val-data "$D/bench-$VAL_BENCH.jsonl" --set "val_limit=${VAL_LIMIT:-64}")
fi

say "classify and caption (ViRL39K images)"
done_or_run "$D/virl39k.typed.jsonl" $INFIMMR classify --in "$D/virl39k.jsonl" --out "$D/virl39k.typed.jsonl" \
  --model "$CLASSIFY_MODEL" "${classify_args[@]}"
done_or_run "$D/virl39k.captioned.jsonl" $INFIMMR caption --in "$D/virl39k.typed.jsonl" \
  --out "$D/virl39k.captioned.jsonl" --model "$CAPTION_MODEL" "${caption_args[@]}"

say "decontam (text rules$( [ "$EMBED_MODEL" = none ] || echo ' + embeddings'))"
embed=(--no-embedding)
[ "$EMBED_MODEL" = none ] || embed=(--embed-model "$EMBED_MODEL")
done_or_run "$D/fra.clean.jsonl" $INFIMMR decontam --train "$D/deepscaler.jsonl" "${bench_flags[@]}" \
  --out "$D/fra.clean.jsonl" --removed "$D/fra.removed.jsonl" "${embed[@]}" "${decontam_args[@]}"
done_or_run "$D/mm.clean.jsonl" $INFIMMR decontam --train "$D/virl39k.captioned.jsonl" "${bench_flags[@]}" \
  --out "$D/mm.clean.jsonl" --removed "$D/mm.removed.jsonl" "${embed[@]}" "${decontam_args[@]}"

say "train: FRA -> CMRA -> MRE"
"$here/phase.sh" fra "$D/fra.clean.jsonl" "$MODEL" "$WORK/fra" "${val_args[@]}" "${train_args[@]}"
"$here/phase.sh" cmra "$D/mm.clean.jsonl" "$WORK/fra/final" "$WORK/cmra" "${val_args[@]}" "${train_args[@]}"
"$here/phase.sh" mre "$D/mm.clean.jsonl" "$WORK/cmra/final" "$WORK/mre" "${val_args[@]}" "${train_args[@]}"

say "export"
done_or_run "$WORK/export/config.json" $INFIMMR export --ckpt "$WORK/mre" --out "$WORK/export" --overwrite

say "eval: base and each phase"
records_flags=()
bench_names=()
for b in $BENCHES; do bench_names+=(--bench "$b"); records_flags+=(--records "$D/bench-$b.jsonl"); done
for pair in "base=$MODEL" "fra=$WORK/fra/final" "cmra=$WORK/cmra/final" "mre=$WORK/export"; do
  label=${pair%%=*}; model=${pair#*=}
  # eval resumes by itself: ids already in predictions.jsonl are not generated again.
  $INFIMMR eval "${bench_names[@]}" "${records_flags[@]}" --model "$model" --out "$WORK/eval/$label" "${eval_args[@]}"
done

say "compare and plot"
$INFIMMR compare "base=$WORK/eval/base" "fra=$WORK/eval/fra" "cmra=$WORK/eval/cmra" "mre=$WORK/eval/mre" \
  --out "$WORK/eval/table"
$INFIMMR plot "fra=$WORK/fra" "cmra=$WORK/cmra" "mre=$WORK/mre" --out "$WORK/plots"
echo "done: table $WORK/eval/table/compare.md, plots $WORK/plots/curriculum.png"
echo "what the policy wrote: $INFIMMR inspect $WORK/mre (rollout samples), $WORK/<phase>/val/ (validation answers)"
