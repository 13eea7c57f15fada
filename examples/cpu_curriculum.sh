#!/usr/bin/env bash
# The whole Infi-MMR chain on a 2-core CPU in minutes, on a toy: a tiny Qwen2.5-VL, warmed up for a minute on sums of two
# small numbers (`infimmr tiny-model --warm-up`), stands in for every model (policy, classifier, captioner, embedder);
# `infimmr demo-data` writes the same sums as toy raw exports in the real schemas: written out for FRA, drawn as bar
# charts for CMRA (with the captions the captioner writes) and MRE. GRPO then lifts reward and accuracy phase by phase.
# It proves the loop learns; it reproduces none of the paper's numbers.
# It runs recipes/curriculum.sh, the same script a GPU cluster runs, with small settings. Rerunning continues.
#   WORK=runs/cpu_curriculum  where everything goes (delete it to start over)
#   STEPS=24                  rollout steps per phase
#   N_TEXT=48 N_IMAGE=48 N_BENCH=16 EVAL_LIMIT=16   data sizes (the test of this script runs it smaller)
#   PROMPTS=8                 prompts per rollout step (each with 8 rollouts)
#   ABLATION=capfre|vision_first   then run that ablation recipe (paper Table 2 / Figure 3) on the same work folder
set -euo pipefail
cd "$(dirname "$0")/.."
export WORK=${WORK:-runs/cpu_curriculum}
STEPS=${STEPS:-24}
N_TEXT=${N_TEXT:-48}
N_IMAGE=${N_IMAGE:-48}
N_BENCH=${N_BENCH:-16}
EVAL_LIMIT=${EVAL_LIMIT:-16}
PROMPTS=${PROMPTS:-8}
if [ -x .venv/bin/infimmr ]; then export PATH="$PWD/.venv/bin:$PATH"; fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export PYTHON=${PYTHON:-python}
mkdir -p "$WORK"
[ -f "$WORK/tiny.provenance.json" ] || infimmr tiny-model "$WORK/tiny" --warm-up
[ -d "$WORK/raw/bench" ] || infimmr demo-data "$WORK/raw" --n-text "$N_TEXT" --n-image "$N_IMAGE" --n-bench "$N_BENCH"

export RAW=$WORK/raw MODEL=$WORK/tiny CLASSIFY_MODEL=$WORK/tiny CAPTION_MODEL=$WORK/tiny EMBED_MODEL=$WORK/tiny
export CLASSIFY_ARGS="--engine hf --batch-size 8"
# The warm-up taught the captioner to say what the chart shows (`red bar 3, blue bar 4`); it never learnt to classify,
# so every image is `other` and gets that type's caption prompt.
export CAPTION_ARGS="--engine hf --batch-size 8 --max-new-tokens 24"
# A tiny model embeds every item alike (cosine ~0.999), so the demo runs the embedding stage with a threshold only
# an identical item passes; real GME embeddings use the paper's 0.95.
export DECONTAM_ARGS="--threshold 0.99999"
# Paper settings scaled to a CPU: 8 prompts x 8 rollouts a step in two updates, short responses, plain torch (no
# DeepSpeed). A tiny model needs a far larger step than a 3B one; no gradient clipping, because the vision tower's
# patch embedding has most of the gradient norm and clipping to it would starve the language model.
export TRAIN_ARGS="--steps $STEPS --set deepspeed="" --set prompts_per_step=$PROMPTS --set group_size=8 --set update_batch=4 \
--set micro_batch=32 --set max_response_len=20 --set max_prompt_len=1024 --set lr=${LR:-5e-4} --set grad_clip=0 \
--set save_every=12 --set reward_workers=1 --set log_rollouts_every=1 --set val_every=8"
# Each phase validates on the toy MathVista items before, during and after training (curves in plots/).
export VAL_BENCH=${VAL_BENCH:-mathvista} VAL_LIMIT=${VAL_LIMIT:-$N_BENCH}
export EVAL_ARGS="--engine hf --limit $EVAL_LIMIT --max-new-tokens 16 --batch-size 16"
case "${ABLATION:-}" in
  ""|capfre|vision_first) ;;
  *) echo "ABLATION: '$ABLATION' is not capfre or vision_first" >&2; exit 2;;
esac
time bash recipes/curriculum.sh
if [ -n "${ABLATION:-}" ]; then time bash "recipes/ablations/$ABLATION.sh"; fi
