#!/usr/bin/env bash
# The MRE phase (image, no caption) alone: recipes/mre.sh DATA.jsonl INIT_DIR OUT_DIR [extra train-phase args]
exec "$(dirname "$0")/phase.sh" mre "$@"
