#!/usr/bin/env bash
# One device call of the validation experiment (issue 8); see README.md here for staging.
# Usage (repository root on the H200, SmolLM2 staged at /root/stage/smol.gguf, gguf in /root/site):
#   bash benchmarks/device/run_experiment.sh [time budget in seconds, default 480]
# Resumes from results/h200/experiment_records.jsonl.gz (committed, travels with the tree) and from
# /root/exp (kept while the machine is held); writes the union and the summary to $OUT.
set -u
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false \
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 SPECHUB_SMOLLM2_GGUF=/root/stage/smol.gguf \
  SPECHUB_WORKSPACES=${SPECHUB_WORKSPACES:-1}
python3 benchmarks/device/experiment.py --target /root/stage/smol.gguf --draft smollm2-draft \
  --prompts .device/prompts_eval.jsonl --records results/h200/experiment_records.jsonl.gz \
  --num-prompts 100 --shard-size "${SHARD:-25}" --max-new-tokens 128 --workers "${WORKERS:-6}" \
  --temperatures 0.6,1.0 --seeds-deep 3 --time-budget-s "${1:-480}" --out /root/exp 2>&1 \
  | grep -v -e "Loading weights" -e "it/s]" | tee -a /root/exp.log
cp /root/exp/experiment_summary.json /root/exp/experiment_records.jsonl.gz "$OUT"/
cp /root/exp.log "$OUT"/experiment.log
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv >> "$OUT"/experiment.log
