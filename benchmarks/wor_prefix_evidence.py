"""Evidence for the unproved sorted-prefix property of drafts without replacement (theory.md 2.3).

For each (p, q, k): the exact optimum by brute force over all 2^n token sets (exact Q(S subset A)
from the law's enumeration) against the best p/q-sorted prefix (k = 2, 3: the library's
``lp.optimal_acceptance(..., method="prefix")``, i.e. the closed form and ``lp.wor3``; k = 4: the
exact P_4(A) of the enumeration restricted to prefixes). Generators:
Dirichlet at several concentrations, sparse zeros, ties, one-hot q, p = q perturbed, near-one-hot
q (1 - q(a) ~ 1e-9), p on the low-q tokens, and a random local search that tries to *increase*
the prefix-vs-optimum gap, and a local search on softmax parameters that *minimises the margin*
(best non-prefix set minus best prefix; negative = counterexample). Writes a JSON summary.

Run: PYTHONPATH=. python benchmarks/wor_prefix_evidence.py --cases 40000 --adversarial 300 --margin 200 \
     --out docs/wor_prefix_evidence.json
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from lp.cut import covered_by_subset
from lp.fast import optimal_acceptance
from spechub_theory.draft_laws import WOR

GENERATORS = ("dirichlet", "sparse", "ties", "onehot_q", "perturbed", "near_onehot", "p_on_low_q")


def draw(kind: str, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """One (p, q) pair of vocabulary n from the named generator."""
    alpha = rng.choice([0.1, 0.3, 1.0, 3.0])
    p, q = rng.dirichlet(np.full(n, alpha)), rng.dirichlet(np.full(n, alpha))
    if kind == "sparse":
        p = np.where(rng.random(n) < 0.4, 0.0, p)
        q = np.where(rng.random(n) < 0.4, 0.0, q)
    elif kind == "ties":
        p, q = rng.integers(1, 3, n).astype(float), rng.integers(1, 3, n).astype(float)
    elif kind == "onehot_q":
        q = np.eye(n)[rng.integers(n)]
    elif kind == "perturbed":
        p = q * np.exp(rng.normal(0, rng.choice([0.1, 0.5, 1.5]), n))
    elif kind == "near_onehot":
        q = np.full(n, 1e-9 / max(n - 1, 1))
        q[rng.integers(n)] = 1.0
    elif kind == "p_on_low_q":
        low = np.argsort(q)[: max(1, n // 2)]
        p = np.zeros(n)
        p[low] = rng.dirichlet(np.ones(len(low)))
    if p.sum() == 0:
        p = np.ones(n)
    if q.sum() == 0:
        q = np.ones(n)
    return p / p.sum(), q / q.sum()


def gap(p: np.ndarray, q: np.ndarray, k: int) -> float | None:
    """(best sorted prefix) - (exact optimum over all sets); >= 0, 0 when the prefix property holds.

    k = 2, 3 use the library's formulas (k = 2: one-hot-q branch included). For k >= 3 a q with fewer than
    k positive entries makes the law draw uniform fallbacks (not a prefix situation: the library
    uses the brute-force cut there); such cases return None and are counted apart.
    """
    n = len(p)
    if k >= 3 and (q > 0).sum() < k:
        return None
    support = WOR.enumerate(q, k)
    covered = covered_by_subset(support, n)
    p_of = np.zeros(1)
    for x in p:
        p_of = np.concatenate([p_of, p_of + x])
    values = p_of + 1.0 - covered
    exact = values.min()
    if k <= 3:  # the library's prefix formulas (k = 3: lp.wor3, exact P_3 on prefixes, O(n^2))
        prefix = float(optimal_acceptance(p, q, k, law="wor", method="prefix"))
    else:
        ratio = np.where(q > 0, p / np.where(q > 0, q, 1), np.where(p > 0, np.inf, 0))
        masks = np.concatenate([[0], np.cumsum(1 << np.argsort(ratio, kind="stable"))])
        prefix = values[masks].min()
    return float(min(prefix, 1.0) - min(exact, 1.0))


def adversarial(n: int, k: int, rng, steps: int = 60) -> float:
    """Random local search on (p, q) maximising the gap; returns the largest gap seen."""
    p, q = draw("dirichlet", n, rng)
    best = gap(p, q, k) or 0.0
    for _ in range(steps):
        p2 = np.abs(p + rng.normal(0, 0.05, n))
        q2 = np.abs(q + rng.normal(0, 0.05, n))
        p2, q2 = p2 / p2.sum(), q2 / q2.sum()
        g = gap(p2, q2, k)
        if g is not None and g >= best:
            p, q, best = p2, q2, g
    return best


def margin(p: np.ndarray, q: np.ndarray, k: int) -> float | None:
    """(best non-prefix set) - (best sorted prefix): negative iff a non-prefix set beats every prefix.

    Unlike the gap (identically 0 while the property holds, so a flat landscape), the margin
    gives a local search something to push on: it is small when a non-prefix set comes close.
    """
    n = len(p)
    if (q > 0).sum() < max(k, 2):
        return None
    covered = covered_by_subset(WOR.enumerate(q, k), n)
    p_of = np.zeros(1)
    for x in p:
        p_of = np.concatenate([p_of, p_of + x])
    values = p_of + 1.0 - covered
    ratio = np.where(q > 0, p / np.where(q > 0, q, 1), np.where(p > 0, np.inf, 0))
    masks = np.concatenate([[0], np.cumsum(1 << np.argsort(ratio, kind="stable"))])
    others = np.ones(len(values), dtype=bool)
    others[masks] = False
    return float(values[others].min() - values[masks].min())


def margin_search(n: int, k: int, rng, steps: int = 100) -> float:
    """Local search on softmax parameters of (p, q) minimising the margin; returns the smallest seen."""
    zp, zq = rng.normal(0, 2, n), rng.normal(0, 2, n)
    soft = lambda z: np.exp(z - z.max()) / np.exp(z - z.max()).sum()  # noqa: E731
    best = margin(soft(zp), soft(zq), k)
    scale = 0.5
    for step in range(steps):
        zp2, zq2 = zp + rng.normal(0, scale, n), zq + rng.normal(0, scale, n)
        m = margin(soft(zp2), soft(zq2), k)
        if m is not None and m <= best:
            zp, zq, best = zp2, zq2, m
        if step % 25 == 24:
            scale /= 2
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000, help="random cases for k = 2 (k = 3, 4: a quarter each)")
    parser.add_argument("--adversarial", type=int, default=300, help="local searches per k")
    parser.add_argument("--margin", type=int, default=200, help="margin-minimising searches per k")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    summary = {"seed": args.seed, "generators": list(GENERATORS), "by_k": {}}
    for k, cases, max_n in ((2, args.cases, 9), (3, args.cases // 4, 8), (4, args.cases // 4, 7)):
        worst, count, violations, skipped = 0.0, {g: 0 for g in GENERATORS}, 0, 0
        for c in range(cases):
            kind = GENERATORS[c % len(GENERATORS)]
            n = int(rng.integers(k, max_n + 1))
            g = gap(*draw(kind, n, rng), k)
            if g is None:
                skipped += 1
                continue
            worst = max(worst, g)
            violations += g > 1e-9
            count[kind] += 1
        adv = max(adversarial(int(rng.integers(k + 1, max_n + 1)), k, rng) for _ in range(args.adversarial))
        summary["by_k"][str(k)] = {
            "random_cases": cases, "per_generator": count, "n_range": [k, max_n],
            "degenerate_skipped": skipped, "max_prefix_minus_exact": worst, "violations_over_1e-9": int(violations),
            "adversarial_searches": args.adversarial, "adversarial_max_gap": adv,
        }
        margins = [margin_search(int(rng.integers(max(k, 3), min(max_n, 6) + 1)), k, rng) for _ in range(args.margin)]
        summary["by_k"][str(k)].update({"margin_searches": args.margin, "smallest_margin": min(margins),
                                        "margins_below_1e-9": int(sum(m < -1e-9 for m in margins))})
        print(k, summary["by_k"][str(k)], flush=True)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)


if __name__ == "__main__":
    main()
