# Shared by the ablation recipes (sourced, not run): the curriculum's settings and its finished steps, reused.
# Needs the curriculum (recipes/curriculum.sh) to have run with the same WORK, RAW and MODEL at least through FRA:
# its prepared and decontaminated data ($WORK/data) and its FRA model ($WORK/fra/final) are used as they are.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${MODEL:?set MODEL to the base model directory, the same as for the curriculum}"
WORK=${WORK:-runs/curriculum}
INFIMMR=${INFIMMR:-infimmr}
D=$WORK/data
# The multimodal benchmarks (the ablations' tables and figure leave MATH500 out).
MM_BENCHES=${MM_BENCHES:-"mathverse mathvision olympiadbench mathvista"}
read -r -a train_args <<< "${TRAIN_ARGS:-}"
read -r -a eval_args <<< "${EVAL_ARGS:-}"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
need() { [ -e "$1" ] || { echo "ablation: $1 is missing: run recipes/curriculum.sh with WORK=$WORK first ($2)" >&2; exit 2; }; }

need "$D/mm.clean.jsonl" "prepare, classify, caption and decontam"
bench_flags=()
for b in $MM_BENCHES; do
  need "$D/bench-$b.jsonl" "the prepared benchmarks"
  bench_flags+=(--bench "$b" --records "$D/bench-$b.jsonl")
done
# Validation as in the curriculum, so accuracy-vs-step curves of the runs compare (Figure 3).
VAL_BENCH=${VAL_BENCH:-$(case " $MM_BENCHES " in *" mathvista "*) echo mathvista;; *) echo none;; esac)}
val_args=()
if [ "$VAL_BENCH" != none ]; then
  val_args=(--val-data "$D/bench-$VAL_BENCH.jsonl" --set "val_limit=${VAL_LIMIT:-64}")
fi

# eval_run LABEL MODEL_DIR: the multimodal benchmarks into $WORK/eval/LABEL (eval resumes by itself).
eval_run() { $INFIMMR eval "${bench_flags[@]}" --model "$2" --out "$WORK/eval/$1" "${eval_args[@]}"; }
