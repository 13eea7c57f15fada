#!/usr/bin/env bash
# The whole Infi-MMR chain on a 2-core CPU in minutes: the tiny random Qwen2.5-VL stands in for every model
# (policy, classifier, captioner, embedder), and `infimmr demo-data` writes toy raw exports in the real schemas.
# It runs recipes/curriculum.sh, the same script a GPU cluster runs, with small settings. Rerunning continues.
#   WORK=runs/cpu_curriculum  where everything goes (delete it to start over)
#   STEPS=3                   rollout steps per phase
#   N_TEXT=24 N_IMAGE=24 N_BENCH=6 EVAL_LIMIT=4   data sizes (the test of this script runs it smaller)
#   ABLATION=capfre|vision_first   then run that ablation recipe (paper Table 2 / Figure 3) on the same work folder
set -euo pipefail
cd "$(dirname "$0")/.."
export WORK=${WORK:-runs/cpu_curriculum}
STEPS=${STEPS:-3}
N_TEXT=${N_TEXT:-24}
N_IMAGE=${N_IMAGE:-24}
N_BENCH=${N_BENCH:-6}
EVAL_LIMIT=${EVAL_LIMIT:-4}
if [ -x .venv/bin/infimmr ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export PYTHON=${PYTHON:-python}
mkdir -p "$WORK"
[ -f "$WORK/tiny/config.json" ] || infimmr tiny-model "$WORK/tiny"
[ -d "$WORK/raw/bench" ] || infimmr demo-data "$WORK/raw" --n-text "$N_TEXT" --n-image "$N_IMAGE" --n-bench "$N_BENCH"

export RAW=$WORK/raw MODEL=$WORK/tiny CLASSIFY_MODEL=$WORK/tiny CAPTION_MODEL=$WORK/tiny EMBED_MODEL=$WORK/tiny
export CLASSIFY_ARGS="--engine hf --batch-size 8"
# A random model's greedy reply is blank: sample captions so the CMRA view has text to prepend.
export CAPTION_ARGS="--engine hf --batch-size 8 --max-new-tokens 16 --temperature 1.0 --seed 0"
# A random model embeds every item alike (cosine ~0.999), so the demo runs the embedding stage with a threshold only
# an identical item passes; real GME embeddings use the paper's 0.95.
export DECONTAM_ARGS="--threshold 0.99999"
# Paper settings scaled to a CPU: 4 prompts x 4 rollouts a step, short responses, plain torch (no DeepSpeed).
export TRAIN_ARGS="--steps $STEPS --set deepspeed="" --set prompts_per_step=4 --set group_size=4 --set update_batch=4 \
--set micro_batch=16 --set max_response_len=24 --set max_prompt_len=1024 --set lr=1e-5 --set save_every=2 \
--set reward_workers=1 --set log_rollouts_every=1 --set val_every=1"
# Each phase validates on the toy MathVista items before, during and after training (curves in plots/).
export VAL_BENCH=${VAL_BENCH:-mathvista} VAL_LIMIT=${VAL_LIMIT:-$N_BENCH}
export EVAL_ARGS="--engine hf --limit $EVAL_LIMIT --max-new-tokens 24 --batch-size 8"
case "${ABLATION:-}" in
  ""|capfre|vision_first) ;;
  *) echo "ABLATION: '$ABLATION' is not capfre or vision_first" >&2; exit 2;;
esac
time bash recipes/curriculum.sh
if [ -n "${ABLATION:-}" ]; then time bash "recipes/ablations/$ABLATION.sh"; fi
