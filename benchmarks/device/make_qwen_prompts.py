"""The natural-pair experiment's 100 prompts (issue 14): the project's 50 coding prompts
(``empirical/data/code_prompts.jsonl``, type ``code``) interleaved with 50 MT-Bench first turns
(type ``chat``), written to a committed file so the device run needs nothing from ``../shared``.

MT-Bench questions (Zheng et al. 2023, "Judging LLM-as-a-judge with MT-Bench and Chatbot Arena",
github.com/lm-sys/FastChat, Apache-2.0; ``../shared/data/mt_bench.jsonl``, questions 81-160): its
coding category is left out (those are code prompts, not chat); of the 7 other categories the first
7 questions each, plus the 8th writing question, in question order (50).

Usage: python3 benchmarks/device/make_qwen_prompts.py [--mt-bench ../shared/data/mt_bench.jsonl]
       [--out benchmarks/device/data/prompts_qwen.jsonl]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from make_eval_prompts import read_jsonl, write_interleaved  # same folder: run as a script

ROOT = Path(__file__).resolve().parents[2]
#: MT-Bench questions per non-coding category, and the category that gets one more (7 x 7 + 1 = 50)
PER_CATEGORY, EXTRA = 7, "writing"


def mt_bench_chat(rows: list) -> list:
    """The 50 chat prompts: first turns of MT-Bench outside its coding category (rule above)."""
    taken: dict = {}
    out = []
    for q in rows:
        cat = q["category"]
        if cat == "coding":
            continue
        if taken.get(cat, 0) < PER_CATEGORY + (cat == EXTRA):
            taken[cat] = taken.get(cat, 0) + 1
            out.append({"id": f"mt_bench-{q['question_id']}", "type": "chat", "category": cat, "turns": q["turns"][:1]})
    return sorted(out, key=lambda r: int(r["id"].split("-")[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mt-bench", default=str(ROOT.parent / "shared" / "data" / "mt_bench.jsonl"))
    ap.add_argument("--code", default=str(ROOT / "empirical" / "data" / "code_prompts.jsonl"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "device" / "data" / "prompts_qwen.jsonl"))
    args = ap.parse_args()
    code, chat = read_jsonl(args.code), mt_bench_chat(read_jsonl(args.mt_bench))
    if len(code) != 50 or len(chat) != 50:
        raise SystemExit(f"make_qwen_prompts: error: need 50 code and 50 chat prompts; got {len(code)} and {len(chat)}")
    write_interleaved(code, chat, args.out)


if __name__ == "__main__":
    main()
