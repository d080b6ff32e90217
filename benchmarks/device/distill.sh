#!/usr/bin/env bash
# Distil the shipped SmolLM2-135M-Instruct draft on one H200 in under 8 minutes of wall time.
#
# Run from the repository root on the device machine, after the GGUF and the gguf wheel are staged
# (benchmarks/device/README.md gives the whole command). Writes into $OUT:
#   draft.safetensors  draft.json  curve.csv  eval.json  distill.log
# and copies draft.safetensors + draft.json into /root/stage/draft/ for a later call on the same machine.
# Extra arguments go to `spechub distill` (e.g. --num-layers 3 --save-dtype bfloat16).
set -euo pipefail
: "${OUT:?set OUT to the output folder}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true TRANSFORMERS_VERBOSITY=error
gguf=${SPECHUB_SMOLLM2_GGUF:-/root/stage/smol.gguf}
heldout=${SPECHUB_HELDOUT:-.device/mt_bench.jsonl}
budget_s=${SPECHUB_DISTILL_BUDGET_S:-400}  # inside Python; imports and exit add ~15 s
mkdir -p "$OUT" /root/stage/draft
echo "[$(date -u +%H:%M:%S)] distill.sh: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo no GPU)," \
  "python $(python3 -c 'import sys; print(sys.version.split()[0])'), budget ${budget_s}s" | tee "$OUT/distill.log"
# the hard stop: the recipe ends itself at budget_s; this only guards against a hang
timeout $((budget_s + 60)) python3 -m spechub_theory.cli distill \
  --out "$OUT" --copy-to /root/stage/draft --target-gguf "$gguf" --heldout-prompts "$heldout" \
  --time-budget-s "$budget_s" "$@" 2>&1 | grep --line-buffered -v 'it/s\]$' | tee -a "$OUT/distill.log"
echo "[$(date -u +%H:%M:%S)] distill.sh: done" | tee -a "$OUT/distill.log"
ls -la "$OUT" /root/stage/draft
