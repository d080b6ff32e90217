"""Optimal transport with membership cost: LP formulations, the fast exact optimum, SpecHub's coupling.

Convention: p = target, q = draft, last axis = vocabulary (theory.md section 1). Imports only
``spechub_theory`` (numpy/scipy); cvxpy and torch are imported lazily where used.
"""
