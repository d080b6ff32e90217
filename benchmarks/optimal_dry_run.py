"""Dry run of the optimal verifier at a real vocabulary on the CPU (issue 19, item 4).

Builds a tiny random Llama pair with Qwen2.5's vocabulary (n = 151,936; logits with a heavy tail, so
p and q look like a real node's: most tokens far below the top), saves it as two model folders, and
runs on them, with ``--methods optimal``:
* ``spechub decode`` with the torch and the numpy engine (tree 2^3 and 2^5);
* the experiment driver (``benchmarks/device/experiment.py``, method ``optimal``), as
  ``run_experiment_qwen.sh`` does with its TARGET / DRAFT overrides;
then times the per-node preparation (``optimal.plan``) on the laws the models produce and states the
estimated preparation cost of one decoding step of a 2^5 tree with 50 rows.

Usage: PYTHONPATH=. python3 benchmarks/optimal_dry_run.py [--out results/optimal_dry_run.json] [--work /tmp/optimal-dry]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N = 151_936


def build_models(work: Path, sharpness: float) -> None:
    """Tiny target and perturbed draft with vocabulary N saved under work/t and work/d."""
    from empirical.tiny import tiny_pair

    pair = tiny_pair(N, sharpness=sharpness, noise=0.3)
    for name, model in (("t", pair.target), ("d", pair.draft)):
        model.save_pretrained(work / name)
        pair.tokenizer.save_pretrained(work / name)
    rows = [{"id": f"code-{i}", "type": "code", "turns": [f"w{7 * i} w{7 * i + 1} w{7 * i + 2}"]} for i in range(4)]
    (work / "prompts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def run(cmd: list, log: dict, name: str) -> None:
    """Run one command, record its wall time and return code (its output tail on failure)."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    log[name] = {"cmd": " ".join(cmd), "rc": done.returncode, "wall_s": round(time.perf_counter() - t0, 1)}
    if done.returncode:
        log[name]["tail"] = (done.stdout + done.stderr)[-2000:]
    print(f"{name}: rc {done.returncode}, {log[name]['wall_s']} s", flush=True)


def node_laws(work: Path, temperature: float, count: int):
    """(p, q) rows of the saved pair at the next-token positions of the prompts' prefixes."""
    import torch
    from transformers import AutoModelForCausalLM

    target = AutoModelForCausalLM.from_pretrained(work / "t").eval()
    draft = AutoModelForCausalLM.from_pretrained(work / "d").eval()
    rng = np.random.default_rng(0)
    ids = torch.as_tensor(rng.integers(2, N, size=(1, count)))
    with torch.no_grad():
        p = torch.softmax(target(ids).logits[0].double() / temperature, -1).numpy()
        q = torch.softmax(draft(ids).logits[0].double() / temperature, -1).numpy()
    return p, q


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/optimal-dry")
    parser.add_argument("--out", default=None)
    parser.add_argument("--sharpness", type=float, default=5.0, help="logit scale of the tiny models")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not (work / "t" / "config.json").exists():
        build_models(work, args.sharpness)
    log: dict = {}
    py = sys.executable
    for engine in ("torch", "numpy"):
        run([py, "-m", "spechub_cli", "decode", "--target", str(work / "t"), "--draft", str(work / "d"),
             "--tree", "2^3,2^5", "--methods", "optimal", "--engine", engine, "--prompts", str(work / "prompts.jsonl"),
             "--num-prompts", "2", "--max-new-tokens", "4", "--temperature", "0.6", "--device", "cpu",
             "--out", str(work / f"decode-{engine}"), "--quiet"], log, f"decode_{engine}")
    run([py, "benchmarks/device/experiment.py", "--target", str(work / "t"), "--draft", str(work / "d"),
         "--prompts", str(work / "prompts.jsonl"), "--num-prompts", "2", "--shard-size", "2", "--max-new-tokens", "3",
         "--temperatures", "0.6", "--seeds-deep", "1", "--first-trees", "2^3", "--binary-methods", "optimal",
         "--ternary-methods", "optimal", "--seed-methods", "optimal", "--node-shards", "0", "--timing-prompts", "0",
         "--device", "cpu", "--workers", "0", "--time-budget-s", "500", "--out", str(work / "experiment")],
        log, "experiment_driver")
    from spechub_theory.methods.optimal_plan import optimal_plan

    timing = {}
    for T in (0.6, 1.0):
        p, q = node_laws(work, T, 6)
        cpu = []
        for i in range(len(p)):
            t0 = time.process_time()
            optimal_plan(p[i], q[i], 2)
            cpu.append(time.process_time() - t0)
        timing[str(T)] = {"prep_cpu_ms_median": 1e3 * float(np.median(cpu)), "prep_cpu_ms_max": 1e3 * float(np.max(cpu)),
                          "tokens_below_1e-16": int(np.median((q < 1e-16).sum(-1)))}
        print(f"T={T}: plan {timing[str(T)]['prep_cpu_ms_median']:.0f} ms CPU (median of {len(p)} nodes)", flush=True)
    log["plan_timing"] = timing
    log["machine"] = {"nproc": os.cpu_count(), "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.out:
        Path(args.out).write_text(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
