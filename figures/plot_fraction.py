"""Figure: each method's acceptance as a fraction of the optimum, as ECDFs over nodes.

Convention: ratio = alpha_method / alpha_reference per node, reference = optimal_wor (or
optimal_iid when w/o replacement is unavailable; each panel says which). Source: theory.md 2.3,
3.6 P4, 4.3; issue 9 (figure 3). matplotlib is imported only when plotting.
"""

from __future__ import annotations

import numpy as np

from .canvas import new_figure
from .style import METHOD_STYLES

__all__ = ["plot_optimum_fractions"]


def plot_optimum_fractions(fractions):
    """One panel per node source: the empirical CDF of ``method / optimum`` for each method.

    Parameters
    ----------
    fractions : list of figures.sweeps.OptimumFractions
        Non-empty; each becomes one panel (e.g. synthetic T = 0.6, synthetic T = 1.0, a real run).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``fractions`` must hold at least one
        OptimumFractions.
    """
    fractions = list(fractions)
    if not fractions:
        raise ValueError("`fractions` must hold at least one OptimumFractions.")
    pooled = np.concatenate([r for f in fractions for r in f.ratios.values() if len(r)] or [np.ones(1)])
    lo, hi = float(pooled.min()), float(np.quantile(pooled, 0.995))  # x clipped at the 99.5th percentile
    with new_figure(1, len(fractions), width=3.6 * len(fractions) + 1.6, height=3.8, sharey=True) as (fig, axes):
        for ax, f in zip(axes[0], fractions):
            for name, r in f.ratios.items():
                if not len(r):
                    continue
                st = METHOD_STYLES[name]
                x = np.sort(r)
                y = np.arange(1, len(x) + 1) / len(x)
                ax.step(x, y, where="post", color=st.color, label=st.label, linewidth=1.8)
                ax.plot([np.median(r)], [0.5], marker=st.marker, color=st.color, markersize=5)
            ax.axvline(1.0, color="black", linestyle=METHOD_STYLES[f.reference].linestyle, linewidth=1.2,
                       label=f"= {f.reference}")
            nodes = max((len(r) for r in f.ratios.values()), default=0)
            ax.set_title(f"{f.source}\n({nodes} nodes)", fontsize=9)
            ax.set_xlabel(f"acceptance / {f.reference}")
            ax.set_xlim(max(0.0, lo - 0.02), max(1.05, hi + 0.02))
        axes[0, 0].set_ylabel("fraction of nodes  (ECDF; dot = median)")
        handles, labels = {}, {}
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside right center", title="method")
        clipped = int(np.sum(pooled > max(1.05, hi + 0.02)))
        fig.suptitle("How far each method is from the optimal acceptance (k = 2 drafts per node)"
                     + (f"\n{clipped} ratios beyond the right edge (all in the CSV)" if clipped else ""), fontsize=11)
    return fig
