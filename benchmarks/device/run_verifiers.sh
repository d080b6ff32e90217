#!/usr/bin/env bash
# One device call of the sequence-level verifier experiment (issue 15 item 5, issue 19 item 5):
# chains 1-5 x {single, block, traversal}, binary 2^2-2^5 and ternary 3^2-3^4 x {traversal, optimal},
# T = 0.6 and 1.0, 100 prompts x 128 new tokens, seed 0, with the prompts, shard layout and per-prompt
# seeds of the committed rrs / spechub / rrs_wor records, so that prompts pair with those cells.
# Usage (repository root on the H200; device call timeout_s 600):
#   bash benchmarks/device/run_verifiers.sh <pair> [time budget in seconds, default 520]
#   pair qwen:    Qwen2.5-Coder-1.5B/0.5B-Instruct staged at /root/q/t.gguf, /root/q/d.gguf (see
#                 run_experiment_qwen.sh), prompts benchmarks/device/data/prompts_qwen.jsonl, shards of 50;
#   pair smollm2: SmolLM2-135M-Instruct at /root/stage/smol.gguf with the shipped draft (see
#                 run_experiment.sh), prompts .device/prompts_eval.jsonl (carry it), shards of 25.
# The gguf wheel is expected in /root/site. Priority: 2^3, 2^5 and chain-3 at both temperatures first,
# then the other binary trees, the other chains, the ternary trees; within a tree the methods in the
# order given; the cells of LATE_METHODS (default optimal, whose per-node preparation runs on the host)
# after all the others. Resumes from results/h200/verifiers/<pair>/experiment_records.jsonl.gz (committed,
# travels with the tree) or, when there, from the union the last call left in $EXP (kept while the
# machine is held); rerun until the log says "0 jobs to run". Writes to $OUT: experiment_summary.json,
# experiment_records.jsonl.gz, timing.json (first call: verification time per method as a share of
# the target forward), experiment.log; commit them to results/h200/verifiers/<pair>/.
# Environment overrides: BINARY_METHODS, TERNARY_METHODS (traversal,optimal), CHAIN_METHODS
# (single,block,traversal), LATE_METHODS (optimal; empty: tree by tree), FIRST_TREES (2^3,2^5,chain-3), BINARY_TREES, TERNARY_TREES, CHAIN_TREES,
# and for a dry run on a CPU: TARGET, DRAFT, PROMPTS, EXP, RESULTS, DEVICE, WORKERS, SHARD, NUM_PROMPTS,
# NEW_TOKENS, TEMPS, TIMING_PROMPTS, TIMING_TOKENS, TIMING_RESERVE.
set -u
pair=${1:?usage: run_verifiers.sh <qwen|smollm2> [budget_s]}
budget=${2:-520}
case "$pair" in
  qwen)    target=/root/q/t.gguf draft=/root/q/d.gguf prompts=benchmarks/device/data/prompts_qwen.jsonl shard=50 ;;
  smollm2) target=/root/stage/smol.gguf draft=smollm2-draft prompts=.device/prompts_eval.jsonl shard=25
           export SPECHUB_SMOLLM2_GGUF=${SPECHUB_SMOLLM2_GGUF:-/root/stage/smol.gguf} ;;
  *) echo "run_verifiers.sh: error: pair must be 'qwen' or 'smollm2'; got '$pair'" >&2; exit 2 ;;
esac
EXP=${EXP:-/root/exp-verifiers-$pair} RESULTS=${RESULTS:-results/h200/verifiers/$pair}
SHARD=${SHARD:-$shard} NUM_PROMPTS=${NUM_PROMPTS:-100} PROMPTS=${PROMPTS:-$prompts}
export PYTHONPATH=/root/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error \
  TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
  SPECHUB_WORKSPACES=${SPECHUB_WORKSPACES:-1}  # one cached workspace per worker: it keeps to its cell's shards
mkdir -p "$EXP"
records=$RESULTS/experiment_records.jsonl.gz timing=2
[ -f "$EXP/experiment_records.jsonl.gz" ] && records=$EXP/experiment_records.jsonl.gz  # the union of the last call
# the timing job runs on a pair's first call only (a resumed pair has its cells' own phase times);
# TIMING_PROMPTS, when set, decides
{ [ -f "$RESULTS/timing.json" ] || [ -f "$RESULTS/experiment_records.jsonl.gz" ]; } && timing=0
timing=${TIMING_PROMPTS:-$timing}
args=(--target "${TARGET:-$target}" --draft "${DRAFT:-$draft}" --prompts "$PROMPTS" --records "$records"
  --num-prompts "$NUM_PROMPTS" --shard-size "$SHARD" --max-new-tokens "${NEW_TOKENS:-128}"
  --temperatures "${TEMPS:-0.6,1.0}" --seeds-deep 1 --first-trees "${FIRST_TREES:-2^3,2^5,chain-3}"
  --binary-trees "${BINARY_TREES:-2^2,2^3,2^4,2^5}" --ternary-trees "${TERNARY_TREES:-3^2,3^3,3^4}"
  --chain-trees "${CHAIN_TREES:-chain-1,chain-2,chain-3,chain-4,chain-5}"
  --binary-methods "${BINARY_METHODS-traversal,optimal}" --ternary-methods "${TERNARY_METHODS-traversal,optimal}"
  --chain-methods "${CHAIN_METHODS-single,block,traversal}" --late-methods "${LATE_METHODS-optimal}" --node-shards 0
  --timing-prompts "$timing" --timing-tokens "${TIMING_TOKENS:-64}" --timing-tree 2^4 --timing-chain-tree chain-3
  --timing-reserve-s "${TIMING_RESERVE:-90}" --workers "${WORKERS:-6}" --device "${DEVICE:-cuda}" --out "$EXP")
echo "[$(date -u +%H:%M:%S)] run_verifiers.sh $pair budget ${budget}s" >> "$EXP.log"
. "$(dirname "$0")/drive_common.sh"
drive_experiment "$EXP" "$budget" "experiment_summary.json experiment_records.jsonl.gz timing.json" "${args[@]}"
