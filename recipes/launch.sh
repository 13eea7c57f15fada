#!/usr/bin/env bash
# Run one infimmr subcommand under torchrun: one GPU, one node of 8, or several nodes.
#   NPROC=8 recipes/launch.sh train-phase --config recipes/phases/fra.json ...
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 NPROC=8 recipes/launch.sh train-phase ...   (and NODE_RANK=1 on the other)
# With NPROC=1 and NNODES=1 the command runs as a plain process (no torchrun), which is what a CPU box wants.
set -euo pipefail
NPROC=${NPROC:-1}
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
MASTER_PORT=${MASTER_PORT:-29500}
PYTHON=${PYTHON:-python}
if [ "$NPROC" -eq 1 ] && [ "$NNODES" -eq 1 ]; then
  exec "$PYTHON" -m infimmr_cli "$@"
fi
exec "$PYTHON" -m torch.distributed.run --nproc_per_node "$NPROC" --nnodes "$NNODES" --node_rank "$NODE_RANK" \
  --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" -m infimmr_cli "$@"
