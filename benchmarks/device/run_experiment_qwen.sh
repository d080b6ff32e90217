#!/usr/bin/env bash
# One device call of the validation experiment on the natural pair (issue 14):
# Qwen2.5-Coder-1.5B-Instruct (target) drafted by Qwen2.5-Coder-0.5B-Instruct, staged by
# ../shared/device/stage-qwen.sh at /root/q/t.gguf and /root/q/d.gguf, gguf wheel in /root/site.
# Usage (repository root on the H200; device call timeout_s 600):
#   bash benchmarks/device/run_experiment_qwen.sh [time budget in seconds, default 520]
# The budget covers loading, decoding and the timing job; the call ends at most ~70 s after it
# (python is killed at budget + 45 s, then what finished is merged).
# Resumes from results/h200/qwen/{experiment_records.jsonl.gz,nodes.npz} (committed, travel with the
# tree) or, when there, from the union the last call left in /root/exp-qwen (kept while the machine
# is held); rerun until the log says "0 jobs to run". Writes to $OUT (5 files, each well under 16 MiB): experiment_summary.json,
# experiment_records.jsonl.gz, nodes.npz (per-node scalars only), timing.json, experiment.log.
# Environment overrides (for a dry run on a CPU): TARGET, DRAFT (model paths), QDIR, EXP, RESULTS, DEVICE, WORKERS, SHARD,
# NUM_PROMPTS, NEW_TOKENS, TEMPS, SEEDS, NODE_SHARDS (0: no node table), TIMING_PROMPTS, TIMING_TOKENS, TIMING_RESERVE.
set -u
budget=${1:-520}
QDIR=${QDIR:-/root/q} EXP=${EXP:-/root/exp-qwen} RESULTS=${RESULTS:-results/h200/qwen}
SHARD=${SHARD:-50} NUM_PROMPTS=${NUM_PROMPTS:-100}
export PYTHONPATH=/root/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error \
  TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
  SPECHUB_WORKSPACES=${SPECHUB_WORKSPACES:-1}  # one cached workspace per worker: it keeps to its cell's shards
mkdir -p "$EXP"
records=$RESULTS/experiment_records.jsonl.gz nodes=$RESULTS/nodes.npz timing=${TIMING_PROMPTS:-2}
[ -f "$EXP/experiment_records.jsonl.gz" ] && records=$EXP/experiment_records.jsonl.gz  # the union of the last call
[ -f "$EXP/nodes.npz" ] && nodes=$EXP/nodes.npz
[ -f "$RESULTS/timing.json" ] && timing=0  # timed in an earlier session
args=(--target "${TARGET:-$QDIR/t.gguf}" --draft "${DRAFT:-$QDIR/d.gguf}" --prompts benchmarks/device/data/prompts_qwen.jsonl
  --records "$records" --nodes "$nodes"
  --num-prompts "$NUM_PROMPTS" --shard-size "$SHARD" --max-new-tokens "${NEW_TOKENS:-128}"
  --temperatures "${TEMPS:-0.6,1.0}" --seeds-deep "${SEEDS:-3}" --first-trees 2^3,2^5
  --binary-methods "${BINARY_METHODS:-spechub,rrs,rrs_wor}" --ternary-methods "${TERNARY_METHODS:-rrs,rrs_wor}"
  --node-shards "${NODE_SHARDS:-$(( (NUM_PROMPTS + SHARD - 1) / SHARD ))}" --node-tree 2^4 --node-method spechub
  --timing-prompts "$timing" --timing-tokens "${TIMING_TOKENS:-64}" --timing-tree 2^4
  --timing-reserve-s "${TIMING_RESERVE:-90}" --workers "${WORKERS:-6}" --device "${DEVICE:-cuda}" --out "$EXP")
echo "[$(date -u +%H:%M:%S)] run_experiment_qwen.sh budget ${budget}s" >> "$EXP.log"
. "$(dirname "$0")/drive_common.sh"
drive_experiment "$EXP" "$budget" "experiment_summary.json experiment_records.jsonl.gz nodes.npz timing.json" "${args[@]}"
