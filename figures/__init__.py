"""Figures and the ``spechub report`` main job (matplotlib, Agg backend, imported lazily).

Each plot is a function that takes data and returns a matplotlib Figure; the report writes PNG,
PDF and the plotted numbers (CSV/JSON) side by side.
"""
