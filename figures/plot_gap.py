r"""Figure: the SpecHub - RRS and SpecHub - RRS w/o replacement gap maps over (q(a), TV) with the proven boundaries.

Convention: p = target, q = draft, a = argmax q; k = 2. Source: theory.md 3.6 P2, P3, P5; issue 9
(figure 2). matplotlib is imported only when plotting.
"""

from __future__ import annotations

import numpy as np

from .canvas import new_figure

__all__ = ["plot_gap_map", "BOUNDARY_LABELS"]

BOUNDARY_LABELS = {
    "rrs": r"$q(a)/(1-q(a)) = \mathrm{TV}$: right of it spechub $\geq$ rrs (P2)",
    "rrs_wor": r"$q(a) = \mathrm{TV}$: right of it spechub $\geq$ rrs_wor (P3)",
}


def plot_gap_map(gap, *, min_count: int = 3):
    """Mean acceptance gap (SpecHub minus baseline) per (q(a), TV) bin, diverging colours centred at 0.

    Parameters
    ----------
    gap : figures.gapmap.GapMap
    min_count : int
        Bins with fewer pairs are left blank.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.colors import TwoSlopeNorm

    baselines = list(gap.gaps)
    tables = {b: gap.binned(b, min_count=min_count) for b in baselines}
    finite = np.concatenate([t["mean"][np.isfinite(t["mean"])] for t in tables.values()])
    vmax = max(float(np.max(np.abs(finite))) if finite.size else 0.0, 1e-3)
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-vmax, vmax=vmax)
    x = np.linspace(1e-4, 0.9999, 400)
    with new_figure(1, len(baselines), width=5.2 * len(baselines) + 1.0, height=4.6) as (fig, axes):
        mesh = None
        for ax, b in zip(axes[0], baselines):
            mesh = ax.pcolormesh(gap.edges, gap.edges, tables[b]["mean"].T, cmap="RdBu_r", norm=norm, shading="flat")
            boundary = x / (1.0 - x) if b == "rrs" else x
            ax.plot(x[boundary <= 1], boundary[boundary <= 1], color="black", linewidth=1.6, label=BOUNDARY_LABELS[b])
            s = gap.summary()[b]
            ax.set_title(f"spechub - {b} (k = 2)\nspechub better in {100 * s['spechub_better']:.0f}% of pairs, "
                         f"violations of the bound: {s['violations_in_proven_region']}", fontsize=10)
            ax.set_xlabel("draft's hub probability q(a), a = argmax q")
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.grid(False)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, frameon=False)
        axes[0, 0].set_ylabel("TV(p, q)")
        fig.colorbar(mesh, ax=axes[0].tolist(), label="mean acceptance gap (red: spechub better)", shrink=0.9)
        fig.suptitle(f"Where SpecHub beats RRS: {gap.params.get('pairs', len(gap.tv))} random LLM-like pairs, "
                     f"n = {gap.params.get('n', '?')}, bins with >= {min_count} pairs")
    return fig
