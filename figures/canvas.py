"""Figure creation and saving without pyplot: an Agg-rendered ``matplotlib.figure.Figure`` per plot.

Convention: every plot function builds its figure inside :func:`new_figure` (house rc style) and
returns it; :func:`save_figure` writes PNG (150 dpi) and PDF with fixed metadata (deterministic
bytes for a given matplotlib) plus the plotted numbers as CSV and JSON side by side.
"""

from __future__ import annotations

import csv
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .style import RC

__all__ = ["new_figure", "save_figure", "write_csv", "clean_json", "SavedFigure", "DPI"]

DPI = 150  # issue 9: 150 dpi PNG
_PDF_METADATA = {"Creator": "spechub report", "Producer": None, "CreationDate": None}
_PNG_METADATA = {"Software": "spechub report"}


@dataclass(frozen=True)
class SavedFigure:
    """Paths written for one figure (strings, relative to the report folder when given one)."""

    stem: str
    png: str
    pdf: str
    csv: str
    json: str

    def to_dict(self) -> dict:
        """JSON-ready dict.

        Returns
        -------
        dict
        """
        return {"stem": self.stem, "png": self.png, "pdf": self.pdf, "csv": self.csv, "json": self.json}


@contextmanager
def new_figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0, **subplot_kw):
    """Yield ``(fig, axes)``: a constrained-layout Agg figure under the house rc style.

    Artists created inside the ``with`` block take the style (fonts, grid); ``axes`` is a 2-D
    array (``squeeze=False``). matplotlib is imported here, never at package import.

    Parameters
    ----------
    nrows : int, optional
    ncols : int, optional
    width : float, optional
    height : float, optional
    **subplot_kw
        Passed to ``Figure.subplots``.

    Yields
    ------
    tuple
        ``(fig, axes)``: the figure and its 2-D array of axes.
    """
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
        yield fig, axes


def save_figure(fig, out_dir, stem: str, *, rows: list, data: dict | None = None) -> SavedFigure:
    """Write ``stem.png`` (150 dpi), ``stem.pdf``, ``stem.csv`` (``rows``) and ``stem.json``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    out_dir : str or Path
        Created if missing.
    stem : str
        File name without extension.
    rows : list of dict
        The plotted numbers, one dict per row (the union of keys makes the CSV header).
    data : dict, optional
        Extra JSON content (source, notes); the JSON holds ``{"rows": rows, **data}``.

    Returns
    -------
    SavedFigure with the four paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {ext: out / f"{stem}.{ext}" for ext in ("png", "pdf", "csv", "json")}
    fig.savefig(paths["png"], dpi=DPI, metadata=_PNG_METADATA)
    fig.savefig(paths["pdf"], metadata=_PDF_METADATA)
    rows = clean_json(rows)
    write_csv(paths["csv"], rows)
    payload = clean_json({"figure": stem, **(data or {}), "rows": rows})
    paths["json"].write_text(json.dumps(payload, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return SavedFigure(stem, *(str(paths[e]) for e in ("png", "pdf", "csv", "json")))


def write_csv(path, rows: list) -> None:
    """Write a list of dicts as CSV (header = keys in first-seen order; floats with repr precision).

    Parameters
    ----------
    path : str or pathlib.Path
    rows : list
    """
    header: list = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, restval="")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})


def clean_json(obj):
    """A JSON-ready copy: numpy scalars/arrays to Python, tuples to lists, NaN and infinities to None.

    Parameters
    ----------
    obj : object
        Any nesting of dicts, lists, tuples, numbers and numpy values.

    Returns
    -------
    object
        The same nesting in plain Python types.

    Examples
    --------
    >>> import numpy as np
    >>> clean_json({"a": np.float64(0.5), "b": [float("nan"), (1, 2)]})
    {'a': 0.5, 'b': [None, [1, 2]]}
    """
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if hasattr(obj, "tolist"):
        return clean_json(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
