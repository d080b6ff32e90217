r"""The textbook OTM LP (SpecTr): a full coupling of the draft law and the target, solved with cvxpy.

Convention: p = target, q = draft; rows = draft tuples of the law's support, columns = tokens.
Source: theory.md 2.1 (the LP), 3.5 (variable counts). The reference for small n only.

.. math::

    \max_{\pi \ge 0} \sum_{\bar x} \sum_{y \in S(\bar x)} \pi(\bar x, y) \quad\text{s.t.}\quad
    \sum_y \pi(\bar x, y) = Q(\bar x),\quad \sum_{\bar x} \pi(\bar x, y) = p(y)

(one column constraint is dropped: it is implied by the others).
"""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np
import scipy.sparse as sp

from spechub_theory.draft_laws import DraftSupport

from .result import OptimumResult, SolverError, cut_from_orders, membership

__all__ = ["solve_textbook", "default_cvxpy_solver"]

#: solvers tried in this order when none is named (HiGHS is exact simplex; the others are conic)
_PREFERRED = ("HIGHS", "CLARABEL", "ECOS", "SCIPY")


#: quiet HiGHS; tight tolerances for the conic solvers (their defaults stop at ~1e-8)
_SOLVER_OPTIONS = {
    "HIGHS": {"output_flag": False, "primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    "CLARABEL": {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12},
}


def default_cvxpy_solver() -> str:
    """The first of HIGHS, CLARABEL, ECOS, SCIPY that cvxpy has installed.

    Returns
    -------
    str
        The solver's name.

    Raises
    ------
    ImportError
        If cvxpy is not installed.
    SolverError
        If cvxpy has none of these solvers.
    """
    import cvxpy as cp

    installed = set(cp.installed_solvers())
    for name in _PREFERRED:
        if name in installed:
            return name
    raise SolverError("no solver", f"cvxpy has none of {', '.join(_PREFERRED)} installed.")


def solve_textbook(support: DraftSupport, p, *, law: str = "custom", cvxpy_solver: str | None = None) -> OptimumResult:
    """Optimal acceptance and plan by the full OTM LP over supp(Q) x V (cvxpy).

    Parameters
    ----------
    support : DraftSupport
        Exact draft law (m tuples).
    p : ndarray, shape (n,)
        Validated target distribution.
    law : str
        Label stored in the result.
    cvxpy_solver : str, optional
        A cvxpy solver name; default :func:`default_cvxpy_solver`.

    Returns
    -------
    OptimumResult
        ``solver="cvxpy:<NAME>"``. The certificate comes from the column duals (threshold sets)
        and the p/Q-membership order, so ``gap`` certifies the solve.

    Raises
    ------
    SolverError
        When the solver does not report an optimal status.
    ImportError
        When cvxpy is not installed (``pip install 'spechub-theory[lp]'``).

    Notes
    -----
    m * n variables (n^{k+1} for i.i.d. drafts), dense: keep n^{k+1} below ~10^6.
    """
    import cvxpy as cp

    solver = cvxpy_solver or default_cvxpy_solver()
    p = np.asarray(p, dtype=np.float64)
    m, n = len(support.mass), len(p)
    rows, cols = np.divmod(np.arange(m * n), n)
    reward = membership(support.tuples, rows, cols).astype(np.float64).reshape(m, n)
    plan_var = cp.Variable((m, n), nonneg=True)
    constraints = [cp.sum(plan_var, axis=1) == support.mass, cp.sum(plan_var[:, : n - 1], axis=0) == p[: n - 1]]
    problem = cp.Problem(cp.Maximize(cp.sum(cp.multiply(reward, plan_var))), constraints)
    try:
        with _quiet_stdout():
            problem.solve(solver=solver, **_SOLVER_OPTIONS.get(solver, {}))
    except cp.error.SolverError as exc:
        raise SolverError("solver error", f"{solver}: {exc}") from None
    if problem.status not in ("optimal", "optimal_inaccurate") or plan_var.value is None:
        raise SolverError(problem.status, f"cvxpy with {solver} returned status {problem.status!r}.")
    dense = _project_onto_marginals(np.maximum(plan_var.value, 0.0), support.mass, p)
    duals = np.zeros(n)
    if constraints[1].dual_value is not None:
        duals[: n - 1] = -np.asarray(constraints[1].dual_value, dtype=np.float64)
    set_mass = support.set_mass(n)
    orders = [
        np.argsort(-duals, kind="stable"),
        np.argsort(duals, kind="stable"),  # the dual's sign convention varies by solver
        np.argsort(np.where(set_mass > 0, p / np.where(set_mass > 0, set_mass, 1.0), np.inf), kind="stable"),
    ]
    plan = sp.csr_array(dense)
    plan.eliminate_zeros()
    return OptimumResult.from_plan(plan, support, p, cut_from_orders(support, p, orders), law, f"cvxpy:{solver}")


@contextlib.contextmanager
def _quiet_stdout():
    """Silence C-level writes to stdout (HiGHS prints a banner even with output_flag off), so that
    ``spechub lp --json`` prints one JSON object only."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # captured stdout (pytest, notebooks): nothing to do
        yield
        return
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), fd)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _project_onto_marginals(plan: np.ndarray, row_mass: np.ndarray, col_mass: np.ndarray, sweeps: int = 50) -> np.ndarray:
    """Remove the solver's residual marginal error (conic solvers stop at ~1e-8) by alternating
    row and column rescaling (Sinkhorn sweeps on the support of ``plan``); a no-op for HiGHS."""
    for _ in range(sweeps):
        r = plan.sum(axis=1)
        plan = plan * np.where(r > 0, row_mass / np.where(r > 0, r, 1.0), 0.0)[:, None]
        c = plan.sum(axis=0)
        plan = plan * np.where(c > 0, col_mass / np.where(c > 0, c, 1.0), 0.0)[None, :]
        if np.abs(plan.sum(axis=1) - row_mass).max() <= 1e-14:
            break
    return plan
