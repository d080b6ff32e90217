"""One mapping of method names to colours, line styles, markers and legend labels, for every figure.

Convention: the closed method vocabulary of the toolkit (``single``, ``rrs``, ``rrs_wor``, ``kseq``,
``spechub``, ``khisti_is``, ``block``, ``traversal``, ``optimal``; the LP optima ``optimal_iid``,
``optimal_wor``) is also the legend vocabulary (style.md C10).
No matplotlib import here: colours are plain hex strings (Okabe-Ito palette, colour-blind safe).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MethodStyle", "METHOD_STYLES", "METHODS", "NEWER_METHODS", "OPTIMA", "PAPER_STYLE", "method_style", "RC"]


@dataclass(frozen=True)
class MethodStyle:
    """How one method is drawn.

    ``color`` (hex), ``linestyle``, ``marker``, ``label`` and a one-line ``description`` (used in
    captions and docs).
    """

    color: str
    linestyle: str
    marker: str
    label: str
    description: str

    def line_kwargs(self) -> dict:
        """Keyword arguments for ``Axes.plot`` (colour, line style, marker, label).

        Returns
        -------
        dict
        """
        return {"color": self.color, "linestyle": self.linestyle, "marker": self.marker, "label": self.label}


#: verification methods, in legend order
METHODS = ("single", "rrs", "rrs_wor", "kseq", "spechub")
#: the verifiers added since SpecHub (issues 15, 19), styled for decoding results; not in the node-level sweeps
NEWER_METHODS = ("khisti_is", "block", "traversal", "optimal")
#: the optimum of the optimal-transport LP, per draft law
OPTIMA = ("optimal_iid", "optimal_wor")

METHOD_STYLES: dict[str, MethodStyle] = {
    "single": MethodStyle("#999999", "-", "v", "single", "one draft, speculative sampling (1 - TV)"),
    "rrs": MethodStyle("#0072B2", "-", "s", "rrs", "recursive rejection sampling, i.i.d. drafts (SpecInfer)"),
    "rrs_wor": MethodStyle("#56B4E9", "-", "D", "rrs_wor", "recursive rejection sampling, drafts without replacement"),
    "kseq": MethodStyle("#009E73", "-", "^", "kseq", "K-SEQ (SpecTr), i.i.d. drafts"),
    "spechub": MethodStyle("#D55E00", "-", "o", "spechub", "SpecHub (hub draft law, Sun et al. 2024)"),
    "khisti_is": MethodStyle("#8C564B", "-", "P", "khisti_is", "importance-sampling selection, i.i.d. drafts (Khisti et al. 2025)"),
    "block": MethodStyle("#E69F00", "-", "X", "block", "block verification of a chain (Sun et al. 2025)"),
    "traversal": MethodStyle("#CC79A7", "-", "h", "traversal", "Traversal Verification, i.i.d. drafts (Weng et al. 2025)"),
    "optimal": MethodStyle("#000000", "-", "*", "optimal", "the optimal verifier of i.i.d. drafts (attains optimal_iid)"),
    "optimal_iid": MethodStyle("#000000", ":", "", "optimal_iid", "optimal transport optimum, i.i.d. drafts"),
    "optimal_wor": MethodStyle("#000000", "--", "", "optimal_wor", "optimal transport optimum, drafts without replacement"),
}

#: the paper's reference points: hollow markers in the method's colour, dotted line
PAPER_STYLE = {"markerfacecolor": "white", "linestyle": ":", "markersize": 7, "markeredgewidth": 1.6}

#: matplotlib rc settings used by every figure (readable fonts, light grid, no top/right spines)
RC = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5,
    "savefig.dpi": 150,
    "pdf.fonttype": 42,
    "svg.hashsalt": "spechub",
}


def method_style(name: str) -> MethodStyle:
    """The style of method ``name``; an unknown name raises ValueError listing the known ones.

    Parameters
    ----------
    name : str

    Returns
    -------
    MethodStyle

    Raises
    ------
    ValueError
        If ``name`` is not a known method.

    Examples
    --------
    >>> method_style("spechub").color
    '#D55E00'
    """
    try:
        return METHOD_STYLES[name]
    except KeyError:
        raise ValueError(f"`name` {name!r} is not one of {', '.join(map(repr, METHOD_STYLES))}.") from None
