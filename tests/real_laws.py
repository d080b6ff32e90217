"""LLM-shaped (p, q) pairs at a real vocabulary size, shared by tests/core/test_optimal.py and
benchmarks/bench_optimal.py."""

from __future__ import annotations

import numpy as np

#: Qwen2.5's vocabulary size (the issue's real node)
N_REAL = 151_936


def real_pair(T: float, seed: int = 1, n: int = N_REAL):
    """Target and draft laws at temperature T: bulk logits ~22 +- 5 below the top (half the tokens
    under 1e-16 at T = 0.6, none at T = 1.0, as in a Qwen node), 30 tokens near the top; the draft is
    the target's logits plus N(0, 0.7) noise."""
    rng = np.random.default_rng(seed)
    logits = -np.abs(rng.normal(22.0, 5.0, n))
    top = rng.integers(0, n, 30)
    logits[top] = -rng.exponential(3.0, 30)
    draft = logits + rng.normal(0.0, 0.7, n)

    def softmax(x):
        e = np.exp((x - x.max()) / T)
        return e / e.sum()

    return softmax(logits), softmax(draft)
