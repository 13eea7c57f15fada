#!/usr/bin/env bash
# The CMRA phase (caption + image) alone: recipes/cmra.sh DATA.jsonl INIT_DIR OUT_DIR [extra train-phase args]
exec "$(dirname "$0")/phase.sh" cmra "$@"
