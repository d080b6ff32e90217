#!/usr/bin/env bash
# One device call of `spechub audit` on the natural pair (issue 17, item 5): transformers' verifier
# (`_speculative_sampling` on the pair's logits), its candidate generator and `generate(assistant_model=...)`
# against Qwen2.5-Coder-1.5B-Instruct (target) drafted by Qwen2.5-Coder-0.5B-Instruct, staged by
# ../shared/device/stage-qwen.sh at /root/q/t.gguf and /root/q/d.gguf (gguf wheel in /root/site),
# across T in {0.6, 1.0} x top-k in {off, 50} x top-p in {1, 0.9}, plus the draft-law drift (finding 4).
# Usage (repository root on the H200; device call timeout_s 300):
#   bash benchmarks/device/run_audit_qwen.sh [budget in seconds, default 200]
# The budget covers everything (dequantising both GGUFs once into the cache, ~8 spawned jobs each
# loading the pair on the GPU in float32, the audits); each audit is sized by the power analysis for
# the smallest TV (from MIN_TV) that its share of the time allows (empirical/audit/model_grid.py), and
# each finished audit is kept if the budget runs out. Python is killed at budget + 30 s.
# Writes to $OUT (2 files): audit_qwen.json (one bundle: versions, hardware, every result with its
# sizing, cost per call and memo statistics), audit_qwen.log.
# Environment overrides (for a dry run on a CPU): TARGET, DRAFT (model paths or names), QDIR, DEVICE,
# JOBS, WORKERS, THREADS, MIN_TV, PROMPT, SETTINGS ('all' or 'T,K,P;...'), LEVELS, PROBE, NAME.
set -u
budget=${1:-200}
start=$(date +%s)
QDIR=${QDIR:-/root/q} OUT=${OUT:-.} NAME=${NAME:-audit_qwen}
export PYTHONPATH=/root/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error \
  TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
log="$OUT/$NAME.log"
echo "[$(date -u +%H:%M:%S)] run_audit_qwen.sh budget ${budget}s on $(hostname), nproc $(nproc --all), load $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$log"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$log"
args=(--target "${TARGET:-$QDIR/t.gguf}" --draft "${DRAFT:-$QDIR/d.gguf}" --prompt "${PROMPT:-The capital of France is}"
  --settings "${SETTINGS:-all}" --levels "${LEVELS:-function,generator,generate,drift}" --min-tv "${MIN_TV:-0.02}"
  --probe "${PROBE:-16}" --jobs "${JOBS:-8}" --workers "${WORKERS:-1}" --threads "${THREADS:-1}"
  --device "${DEVICE:-cuda}" --budget-s "$budget" --start-epoch "$start" --reserve-s 12 --out "$OUT/$NAME.json")
timeout -k 5 $(( budget + 30 )) python3 -m empirical.audit.model_grid "${args[@]}" 2>&1 \
  | grep --line-buffered -v -e "Loading weights" -e "it/s]" -e "Converting and de-quantizing" -e "is deprecated" | tee -a "$log"
rc=${PIPESTATUS[0]}
echo "[$(date -u +%H:%M:%S)] model_grid exited with $rc after $(( $(date +%s) - start )) s" | tee -a "$log"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv >> "$log"
ls -l "$OUT"
