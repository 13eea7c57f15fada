#!/usr/bin/env bash
# The FRA phase (text-only math) alone: recipes/fra.sh DATA.jsonl INIT_DIR OUT_DIR [extra train-phase args]
exec "$(dirname "$0")/phase.sh" fra "$@"
