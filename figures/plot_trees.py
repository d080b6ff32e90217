"""Figure: tokens per step vs token-tree size per method: exact (synthetic), measured (real), paper.

Convention: tokens per step = accepted drafts + 1 per target forward; tree size counts the root
(2^d: 3, 7, 15, 31 nodes; 3^d: 4, 13, 40). Source: theory.md 1.1; seed-notes 4.1/4.2 (paper
reference); issue 9 (figure 4). matplotlib is imported only when plotting.
"""

from __future__ import annotations

from .canvas import new_figure
from .style import METHOD_STYLES, PAPER_STYLE

__all__ = ["plot_tokens_per_step", "tree_family"]

_FAMILY_LINE = {"binary": "-", "ternary": "-.", "other": "--"}


def tree_family(name: str) -> str:
    """'binary' for 2^d trees, 'ternary' for 3^d, 'other' otherwise.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
    """
    name = str(name).replace(" ", "")
    return "binary" if name.startswith("2^") else "ternary" if name.startswith("3^") else "other"


def plot_tokens_per_step(synthetic=None, real=None, paper=None, *, paper_label: str = "paper",
                         title: str = "Tokens per target forward vs token-tree size"):
    """Plot the tokens per step vs tree size; the paper's points drawn hollow in every panel.

    Parameters
    ----------
    synthetic : list of dict, optional
        Exact values: rows ``{"tree", "nodes", "method", "tokens_per_step"}`` (+ ``source``: one
        panel per source).
    real : list of dict, optional
        Measured: rows ``{"source", "tree", "nodes", "method", "value", "low", "high"}`` (95%
        bootstrap interval); one panel per source.
    paper : list of dict, optional
        Reference rows ``{"tree", "nodes", "method", "tokens_per_step"}``.
    paper_label : str
        Legend text of the reference points (model pair, data, temperature).
    title : str
        The figure's title (e.g. the model pair of a per-pair figure).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If all three inputs are empty.
    """
    synthetic, real, paper = list(synthetic or []), list(real or []), list(paper or [])
    panels = []
    for source in dict.fromkeys(r.get("source", "synthetic (exact)") for r in synthetic):
        panels.append((source, [r for r in synthetic if r.get("source", "synthetic (exact)") == source], "tokens_per_step"))
    for source in dict.fromkeys(r["source"] for r in real):
        panels.append((source, [r for r in real if r["source"] == source], "value"))
    if not panels and paper:
        panels.append(("paper reference", [], "value"))
    if not panels:
        raise ValueError("nothing to plot: `synthetic`, `real` and `paper` are all empty.")
    with new_figure(1, len(panels), width=4.3 * len(panels) + 2.6, height=4.2) as (fig, axes):
        for ax, (panel, rows, key) in zip(axes[0], panels):
            _lines(ax, rows, key, hollow=False)
            _lines(ax, paper, "tokens_per_step", hollow=True)
            ax.set_xscale("log", base=2)
            ticks = sorted({r["nodes"] for r in rows + paper})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_xlabel("tree size (nodes incl. root; log scale)")
            ax.set_title(panel, fontsize=9)
        axes[0, 0].set_ylabel("tokens per step (accepted + 1)")
        _legend(fig, axes[0], paper_label if paper else None)
        fig.suptitle(title)
    return fig


def _lines(ax, rows, key, *, hollow: bool) -> None:
    """One line per (method, tree family), error bars when rows carry low/high."""
    for name, st in METHOD_STYLES.items():
        for family, ls in _FAMILY_LINE.items():
            pts = sorted((r["nodes"], r[key], r.get("low"), r.get("high")) for r in rows
                         if r["method"] == name and tree_family(r["tree"]) == family and r.get(key) is not None)
            if not pts:
                continue
            x = [p[0] for p in pts]
            y = [p[1] for p in pts]
            kw = dict(color=st.color, marker=st.marker or "o")
            if hollow:
                ax.plot(x, y, **kw, **{**PAPER_STYLE, "linestyle": ":" if family == "binary" else (0, (1, 3))})
                continue
            ax.plot(x, y, linestyle=ls, label=st.label, **kw)
            if all(p[2] is not None and p[3] is not None for p in pts):
                ax.errorbar(x, y, yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]], fmt="none",
                            ecolor=st.color, capsize=3, linewidth=1.2)


def _legend(fig, axes_row, paper_label) -> None:
    """Methods, then the line-style key (binary / ternary / paper), outside the data."""
    from matplotlib.lines import Line2D

    found = {}
    for ax in axes_row:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            found.setdefault(lab, h)
    handles = {st.label: found[st.label] for st in METHOD_STYLES.values() if st.label in found}
    keys = [Line2D([], [], color="#444444", linestyle="-", label="binary trees 2^d"),
            Line2D([], [], color="#444444", linestyle="-.", label="ternary trees 3^d"),
            Line2D([], [], color="#444444", linestyle="--", label="chains and other trees")]
    if paper_label:
        keys.append(Line2D([], [], color="#444444", marker="o", **PAPER_STYLE, label=paper_label))
    fig.legend(list(handles.values()) + keys, list(handles.keys()) + [k.get_label() for k in keys],
               loc="outside right center", title="method / key", fontsize=8)
