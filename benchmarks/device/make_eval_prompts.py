"""The validation experiment's 100 prompts: the first 50 built-in prompts interleaved with the first
turns of the first 50 MT-Bench questions (read at run time, never copied into the package data).

Usage: python3 benchmarks/device/make_eval_prompts.py [--mt-bench ../shared/data/mt_bench.jsonl] [--out .device/prompts_eval.jsonl]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_jsonl(path) -> list[dict]:
    """The rows of a JSONL file (blank lines skipped)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def write_interleaved(first: list, second: list, out) -> None:
    """Write ``first[0], second[0], first[1], ...`` as JSONL to ``out`` and say how many."""
    lines = [json.dumps(row) for pair in zip(first, second) for row in pair]
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"{len(lines)} prompts -> {out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mt-bench", default="../shared/data/mt_bench.jsonl")
    ap.add_argument("--builtin", default=str(Path(__file__).resolve().parents[2] / "empirical" / "data" / "prompts.jsonl"))
    ap.add_argument("--count", type=int, default=50, help="prompts taken from each source (default 50)")
    ap.add_argument("--out", default=".device/prompts_eval.jsonl")
    args = ap.parse_args()
    builtin = read_jsonl(args.builtin)[: args.count]
    mt = [{"turns": q["turns"][:1], "id": f"mt_bench-{q['question_id']}"} for q in read_jsonl(args.mt_bench)[: args.count]]
    write_interleaved(builtin, mt, args.out)


if __name__ == "__main__":
    main()
