# Sourced by run_experiment_qwen.sh and run_verifiers.sh (not run on its own).
# drive_experiment EXP BUDGET "FILE ..." ARGS...: run experiment.py ARGS under a hard timeout (python is
# killed at BUDGET + 45 s), merge the finished jobs when it was killed or failed (--merge-only), then
# copy the listed result files of EXP, the log EXP.log and the GPU state to $OUT.
drive_experiment() {
  local exp=$1 budget=$2 files=$3 rc f
  shift 3
  # to a file, not a pipe: a spawned process that outlives python (a plan pool of a terminated
  # worker) would hold a pipe open and hang the call (H200, 2026-12-02); such leftovers are killed
  timeout -k 5 $(( budget + 45 )) python3 benchmarks/device/experiment.py "$@" --time-budget-s "$budget" > "$exp.raw" 2>&1
  rc=$?
  pkill -f "multiprocessing.spawn" 2>/dev/null
  grep -v -e "Loading weights" -e "it/s]" -e "Converting and de-quantizing" "$exp.raw" | tee -a "$exp.log"
  if [ "$rc" != 0 ]; then  # killed or failed: merge what the job folders hold
    echo "experiment.py exited with $rc; merging the finished jobs" | tee -a "$exp.log"
    timeout 25 python3 benchmarks/device/experiment.py "$@" --timing-prompts 0 --merge-only 2>&1 | tail -3 | tee -a "$exp.log"
  fi
  for f in $files; do
    [ -f "$exp/$f" ] && cp "$exp/$f" "${OUT:-.}"/
  done
  cp "$exp.log" "${OUT:-.}"/experiment.log
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv >> "${OUT:-.}"/experiment.log
  ls -l "${OUT:-.}"
}
