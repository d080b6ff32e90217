"""Figure: acceptance vs temperature of every method and the optimum (synthetic and real nodes).

Convention: p = target, q = draft; k drafts per node; temperature applied to both logits.
Source: theory.md 3.4, 3.6, 4; issue 9 (figure 1). matplotlib is imported only when plotting.
"""

from __future__ import annotations

import numpy as np

from .canvas import new_figure
from .style import METHOD_STYLES

__all__ = ["plot_acceptance_vs_temperature"]


def plot_acceptance_vs_temperature(sweep, real_points=None):
    """Acceptance (k drafts) vs temperature: one panel per target-noise level, plus real models.

    Parameters
    ----------
    sweep : figures.sweeps.TemperatureSweep
        Synthetic LLM-like pairs; curves are means over positions with a +-1 standard-error band.
    real_points : list of dict, optional
        Mean exact acceptance at the verified nodes of real decoding runs, rows with ``source``,
        ``temperature``, ``method``, ``mean`` (and ``nodes``); one extra panel, one line per
        (source, method). Omitted when empty.

    Returns
    -------
    matplotlib.figure.Figure
    """
    real_points = list(real_points or [])
    panels = len(sweep.noises) + (1 if real_points else 0)
    with new_figure(1, panels, width=3.3 * panels + 1.6, height=3.8, sharey=True) as (fig, axes):
        temps = np.asarray(sweep.temperatures)
        for i, noise in enumerate(sweep.noises):
            ax = axes[0, i]
            for name in sweep.values:
                st = METHOD_STYLES[name]
                mean, sem = sweep.mean(name)[i], sweep.sem(name)[i]
                ax.plot(temps, mean, **{**st.line_kwargs(), "marker": st.marker if not name.startswith("optimal") else ""},
                        markersize=3.5)
                ax.fill_between(temps, mean - sem, mean + sem, color=st.color, alpha=0.15, linewidth=0)
            ax.set_title(f"synthetic, target noise {noise:g}")
            ax.set_xlabel("temperature T (both models)")
        if real_points:
            _real_panel(axes[0, -1], real_points)
            ts = list(temps) + [r["temperature"] for r in real_points]
            pad = 0.05 * (max(ts) - min(ts)) or 0.1
            axes[0, -1].set_xlim(min(ts) - pad, max(ts) + pad)  # the synthetic panels' range, for comparison
        axes[0, 0].set_ylabel(f"acceptance rate, k = {sweep.k} drafts")
        handles, labels = _unique_legend(axes[0])
        fig.legend(handles, labels, loc="outside right center", title="method")
        fig.suptitle(f"Acceptance vs temperature (n = {sweep.n} tokens, {sweep.positions} positions per point; "
                     f"Zipf {sweep.params.get('zipf', '?')}, spread {sweep.params.get('spread', '?')})")
    return fig


def _real_panel(ax, rows) -> None:
    """Real-model panel: one line per (source, method), markers at the measured temperatures."""
    sources = sorted({r["source"] for r in rows})
    dashes = ["-", "--", "-.", ":"]
    for s, source in enumerate(sources):
        for name in METHOD_STYLES:
            pts = sorted((r["temperature"], r["mean"]) for r in rows if r["source"] == source and r["method"] == name
                         and r.get("mean") is not None)
            if not pts:
                continue
            st = METHOD_STYLES[name]
            t, v = zip(*pts)
            ax.plot(t, v, color=st.color, marker=st.marker or "o", linestyle=dashes[s % len(dashes)] if len(t) > 1 else "none",
                    label=st.label, markersize=6)
    ax.set_title("real models (node means)" if len(sources) > 1 else f"real: {sources[0]}", fontsize=9)
    ax.set_xlabel("temperature T (both models)")
    if len(sources) > 1:
        ax.text(0.02, 0.02, "\n".join(f"{dashes[i % 4]} {s}" for i, s in enumerate(sources)), transform=ax.transAxes, fontsize=7)


def _unique_legend(axes_row):
    """Legend handles and labels from all panels, first occurrence of each label."""
    seen = {}
    for ax in axes_row:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    return list(seen.values()), list(seen.keys())
