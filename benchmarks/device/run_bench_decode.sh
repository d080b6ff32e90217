#!/usr/bin/env bash
# One device call of the decoding benchmark (issue 16): our fast runtime vs its eager reference vs
# HF generate() (eager, static cache + compile) vs HF assisted generation, batch 1 and 16, one process.
# Usage (repository root on the H200; device call timeout_s 600, about 5 minutes):
#   bash benchmarks/device/run_bench_decode.sh qwen|smollm2 [time budget in seconds, default 240]
# Pairs (staged beforehand, as for the validation experiment):
#   qwen     Qwen2.5-Coder-1.5B-Instruct / -0.5B-Instruct at /root/q/t.gguf, /root/q/d.gguf
#            (../shared/device/stage-qwen.sh, see run_experiment_qwen.sh), gguf wheel in /root/site
#   smollm2  SmolLM2-135M-Instruct at /root/stage/smol.gguf with the shipped draft smollm2-draft
#            (../shared/device/stage-smollm2.sh, see run_experiment.sh)
# The budget covers loading and every run (a run starts only with >= 5 s left; the rest are
# recorded as skipped); python is killed at budget + 60 s. Each finished run rewrites
# $OUT/bench_decode_<pair>_b1.json and _b16.json (atomically), so a kill keeps what finished; the
# log goes to $OUT/bench_decode_<pair>.log. A failing baseline is recorded as an error, the rest run.
# Environment overrides (for a dry run on a CPU): TARGET, DRAFT, DEVICE, BATCHES, TREES, METHODS,
# NUM_PROMPTS, NEW_TOKENS, TEMPERATURE, HF_GROUPS, COMPILE_VERIFY (a torch.compile backend: extra rows with the
# verification piece compiled, e.g. inductor), COMPILE_FORWARD (likewise for the model pieces: extra
# ar and tree rows with each draft level and the target forward compiled, then graphed).
set -u
pair=${1:-}
budget=${2:-240}
out=${OUT:-.}
export PYTHONPATH=/root/site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 TRANSFORMERS_VERBOSITY=error \
  TOKENIZERS_PARALLELISM=false
case "$pair" in
  qwen) target=${TARGET:-/root/q/t.gguf} draft=${DRAFT:-/root/q/d.gguf} ;;
  smollm2) export SPECHUB_SMOLLM2_GGUF=${SPECHUB_SMOLLM2_GGUF:-/root/stage/smol.gguf}
           target=${TARGET:-/root/stage/smol.gguf} draft=${DRAFT:-smollm2-draft} ;;
  *) echo "run_bench_decode.sh: error: the pair must be 'qwen' or 'smollm2'; got '$pair'" >&2; exit 2 ;;
esac
mkdir -p "$out"
log=$out/bench_decode_$pair.log
echo "[$(date -u +%FT%TZ)] run_bench_decode.sh $pair budget ${budget}s" | tee "$log"
timeout -k 5 $(( budget + 60 )) python3 benchmarks/bench_decode.py --pair "$pair" --target "$target" --draft "$draft" \
  --device "${DEVICE:-cuda}" --batch-sizes "${BATCHES:-1,16}" --trees "${TREES:-2^4}" --methods "${METHODS:-spechub,rrs,rrs_wor,traversal}" \
  --num-prompts "${NUM_PROMPTS:-4}" --max-new-tokens "${NEW_TOKENS:-128}" --temperature "${TEMPERATURE:-0.6}" \
  --hf-groups "${HF_GROUPS:-2}" --time-budget-s "$budget" --out-dir "$out" ${COMPILE_VERIFY:+--compile-verify "$COMPILE_VERIFY"} \
  ${COMPILE_FORWARD:+--compile-forward "$COMPILE_FORWARD"} 2>&1 \
  | grep --line-buffered -v -e "Loading weights" -e "it/s]" -e "Converting and de-quantizing" | tee -a "$log"
echo "bench_decode.py exited with ${PIPESTATUS[0]}" | tee -a "$log"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv >> "$log"
ls -l "$out"
