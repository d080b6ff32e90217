"""Figure: optimal-transport LP solve time vs the fast exact formula, against vocabulary size.

Convention: one point per (solver, k, draft law, n) from the lp benchmark JSON (``part1.rows``:
k, law, n, method, seconds; ``part2``: the fast formula at real vocabulary sizes). Source:
lp/benchmarks (issue 9, figure 5). matplotlib is imported only when plotting.
"""

from __future__ import annotations

from .canvas import new_figure

__all__ = ["plot_lp_timing", "SOLVER_COLORS"]

#: solver colours (solvers, not verification methods: a separate palette from style.METHOD_STYLES)
SOLVER_COLORS = {"textbook_lp": "#882255", "reduced_lp": "#DDAA33", "bruteforce_cut": "#44AA99", "fast": "#000000"}
_K_STYLE = {2: "-", 3: "--", 4: ":"}


def plot_lp_timing(rows, *, fast_rows=None, source: str = ""):
    """Plot the seconds per solve vs vocabulary size n (log-log), one panel per draft law.

    Parameters
    ----------
    rows : list of dict
        ``{"k", "law", "n", "method", "seconds"}`` per measured solve.
    fast_rows : list of dict, optional
        The fast formula at large n: ``{"n", "k", "drafts", "ms_per_position"}`` (drawn as stars).
    source : str
        Where the numbers come from (date, CPU), shown under the title.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``rows`` holds no timings.
    """
    rows = [r for r in rows if r.get("seconds") is not None]
    if not rows:
        raise ValueError("`rows` holds no timings.")
    laws = sorted({r["law"] for r in rows})
    with new_figure(1, len(laws), width=4.4 * len(laws) + 1.8, height=4.0, sharey=True) as (fig, axes):
        for ax, law in zip(axes[0], laws):
            for method in [m for m in SOLVER_COLORS if any(r["method"] == m for r in rows)] + sorted(
                    {r["method"] for r in rows} - set(SOLVER_COLORS)):
                for k in sorted({r["k"] for r in rows}):
                    pts = sorted((r["n"], r["seconds"]) for r in rows if r["law"] == law and r["method"] == method and r["k"] == k)
                    if pts:
                        n, s = zip(*pts)
                        ax.plot(n, s, color=SOLVER_COLORS.get(method, "#777777"), linestyle=_K_STYLE.get(k, "-."),
                                marker="o", markersize=4, label=f"{method}, k = {k}")
            for r in fast_rows or []:
                if r.get("drafts") == law:
                    ax.plot([r["n"]], [r["ms_per_position"] / 1e3], marker="*", markersize=11, linestyle="none",
                            color=SOLVER_COLORS["fast"], label=f"fast, k = {r.get('k', 2)}, per position (large n)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("vocabulary size n (tokens)")
            ax.set_title(f"draft law: {law}")
        axes[0, 0].set_ylabel("seconds per solve (one position)")
        handles = {}
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        fig.legend(list(handles.values()), list(handles.keys()), loc="outside right center", title="solver")
        fig.suptitle("Exact optimum: LP solvers vs the fast formula" + (f"\n{source}" if source else ""), fontsize=11)
    return fig
