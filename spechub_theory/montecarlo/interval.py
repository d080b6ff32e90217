"""One confidence interval type for every Monte Carlo estimate (acceptance rates, tokens per step).

Convention: a closed two-sided interval ``[low, high]`` at confidence ``level``; ``how`` names the
construction when it is not the default Wilson score interval (e.g. batch means with Student t).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfidenceInterval"]


@dataclass(frozen=True)
class ConfidenceInterval:
    """Two-sided interval ``[low, high]`` at confidence ``level``, built as ``how`` says.

    Examples
    --------
    >>> ci = ConfidenceInterval(0.2, 0.4)
    >>> ci.contains(0.3), ci.to_list(), ci.to_dict()
    (True, [0.2, 0.4], {'low': 0.2, 'high': 0.4, 'level': 0.95})
    """

    low: float
    high: float
    level: float = 0.95
    how: str = ""

    def contains(self, x: float) -> bool:
        """Whether ``low <= x <= high``.

        Parameters
        ----------
        x : float

        Returns
        -------
        bool
        """
        return bool(self.low <= x <= self.high)

    def to_list(self) -> list[float]:
        """``[low, high]``.

        Returns
        -------
        list[float]
        """
        return [self.low, self.high]

    def to_dict(self) -> dict:
        """``{"low", "high", "level"}``, plus ``"how"`` when set.

        Returns
        -------
        dict
        """
        out = {"low": self.low, "high": self.high, "level": self.level}
        if self.how:
            out["how"] = self.how
        return out
