"""The node rule on the device (``TorchNodeRule``): what every torch method's ``rule`` returns.

Convention: p = target, q = draft, last axis = vocabulary; float64 tensors. Its own module so that
:mod:`empirical.fast_verify` and the per-method torch rules (:mod:`empirical.optimal_torch`) share
it without importing each other (issue 13).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TorchNodeRule"]


@dataclass(frozen=True)
class TorchNodeRule:
    """Node rule of one node on the device.

    ``accept`` [k] (P(slot j accepted | drafts)) and the normalised ``residual`` [n] (float64
    tensors).
    """

    accept: object
    residual: object
