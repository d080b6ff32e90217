"""Figures and the ``spechub report`` main job (matplotlib, Agg canvas, imported lazily).

Convention: p = target, q = draft, last axis = vocabulary; method names and colours from one
mapping (:mod:`figures.style`). ``import figures`` imports neither matplotlib nor torch: only the
plot functions import matplotlib, only the real-model run imports the ``empirical`` package.

* data: :mod:`figures.llm_pairs` (synthetic LLM-like pairs, theory.md 3.6), :mod:`figures.sweeps`
  (acceptance vs temperature, fractions of the optimum), :mod:`figures.gapmap` (SpecHub - RRS over
  (q(a), TV)), :mod:`figures.tree_rows` (exact tokens per step), :mod:`figures.sources` (the
  paper's numbers, LP benchmarks, real-model runs);
* plots, each a function returning a matplotlib Figure: :mod:`figures.plot_acceptance`,
  :mod:`figures.plot_gap`, :mod:`figures.plot_fraction`, :mod:`figures.plot_trees`,
  :mod:`figures.plot_lp`; :mod:`figures.canvas` saves PNG (150 dpi), PDF, CSV and JSON side by side;
* the report: :mod:`figures.report` (``build_report``), :mod:`figures.markdown` (``index.md``),
  :mod:`spechub_cli.report` (``spechub report``). Details: docs/figures.md.
"""
