r"""Planted bugs (negative controls) of the real bug classes, at the function level, with exact laws.

Convention: p = target, q = draft, last axis = vocabulary; each bug is a function-level sampler
(see ``function_level``) built for one ``FunctionCase``, whose verifier uses a wrong (p', q') or a
wrong residual while the drafts really come from q. Source: theory.md 3.1; issue 17 (the bug classes).

Exact law of such a verifier (drafts x ~ q, accept w.p. min(1, p'(x)/q'(x)), else residual r):

.. math:: \mathrm{out} = q \min(1, p'/q') + \Big(1 - \sum q \min(1, p'/q')\Big)\, r.

The generator-level and end-to-end bugs (a claimed q without top-k/top-p, a draft that ignores
temperature) live in ``generator_level``: they need a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .cases import FunctionCase, Sampling, hf_process, softmax64

__all__ = ["PlantedVerifier", "FUNCTION_BUGS", "planted_function_bugs"]


@dataclass(frozen=True)
class PlantedVerifier:
    """A wrong single-draft verifier.

    Tests with ``p_used``/``q_used``; residual from ``(p_used - q_used)_+``, renormalised unless
    ``renormalise`` is False (then the inverse CDF runs on the unnormalised masses and a uniform
    beyond their total falls on the last token, as ``searchsorted`` clamped to n - 1 does).
    """

    NAME: str
    DESCRIPTION: str
    p_used: np.ndarray
    q_used: np.ndarray
    q_true: np.ndarray
    renormalise: bool = True
    audit_input = "probs"

    def __call__(self, target_probs, draft_probs, drafts, rng):
        """First emitted token of each trial (N,); the case's own laws are ignored (closure)."""
        x = drafts[:, 0]
        u = rng.random((len(x), 2))
        ratio = np.divide(self.p_used[x], self.q_used[x], out=np.ones(len(x)), where=self.q_used[x] > 0)
        accept = u[:, 0] < ratio
        r = self._residual()
        cdf = np.cumsum(r)
        total = cdf[-1] if self.renormalise else 1.0
        y = np.minimum(np.searchsorted(cdf, u[:, 1] * total, side="right"), len(r) - 1)
        return np.where(accept, x, y)

    def exact_law(self) -> np.ndarray:
        """The exact first-token law (float64, sums to 1). O(n).

        Returns
        -------
        numpy.ndarray
        """
        ratio = np.divide(self.p_used, self.q_used, out=np.ones_like(self.p_used), where=self.q_used > 0)
        keep = self.q_true * np.minimum(1.0, ratio)
        r = self._residual()
        if self.renormalise:
            rest = r
        else:
            rest = r.copy()
            rest[-1] += 1.0 - r.sum()  # uniforms beyond the unnormalised total land on the last token
        return keep + (1.0 - keep.sum()) * rest

    def _residual(self) -> np.ndarray:
        r = np.maximum(self.p_used - self.q_used, 0.0)
        if self.renormalise:
            s = r.sum()
            return r / s if s > 0 else self.p_used
        return r


def _residual_not_renormalised(case: FunctionCase) -> PlantedVerifier:
    return PlantedVerifier("residual_not_renormalised", "residual (p - q)_+ sampled by inverse CDF without dividing by its mass",
                           case.p[0], case.q[0], case.q[0], renormalise=False)


def _ratio_bf16(case: FunctionCase) -> PlantedVerifier:
    import torch

    lo = lambda z: softmax64(torch.as_tensor(z).to(torch.bfloat16).float().numpy())[0]  # noqa: E731
    return PlantedVerifier("ratio_bf16", "ratio and residual from bf16-rounded logits; drafts sampled in fp32 (DeepSpec #31 class)",
                           lo(case.target_logits), lo(case.draft_logits), case.q[0])


def _temperature_p_only(case: FunctionCase) -> PlantedVerifier:
    s = case.sampling
    q_wrong = softmax64(hf_process(case.raw_draft, Sampling(1.0, s.top_k, s.top_p)))[0]
    return PlantedVerifier("temperature_p_only", "temperature applied to p but not to q in the verifier (q at T = 1)",
                           case.p[0], q_wrong, case.q[0])


#: name -> (builder(case) -> PlantedVerifier, needs: a predicate on the Sampling for the bug to exist)
FUNCTION_BUGS: dict[str, tuple[Callable, Callable]] = {
    "residual_not_renormalised": (_residual_not_renormalised, lambda s: True),
    "ratio_bf16": (_ratio_bf16, lambda s: True),
    "temperature_p_only": (_temperature_p_only, lambda s: s.temperature != 1.0),
}


def planted_function_bugs(case: FunctionCase) -> list[PlantedVerifier]:
    """Every function-level planted bug that exists at the case's settings.

    Parameters
    ----------
    case : FunctionCase

    Returns
    -------
    list[PlantedVerifier]
    """
    return [build(case) for build, applies in FUNCTION_BUGS.values() if applies(case.sampling)]
