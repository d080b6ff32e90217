"""Numpydoc sections of the public API checked by a tool made for it: ``numpydoc.validate``.

pydocstyle (``test_docstrings.py``) checks that sections are well formed but not that they are
there; this test asks numpydoc's own validator, object by object, for every function and class
named in ``__all__`` of ``spechub_theory``, ``spechub_theory.methods``,
``spechub_theory.montecarlo``, ``spechub_theory.trees`` and ``lp``, and for every public function
(no leading underscore) defined in any module of ``lp`` and in the core modules listed in
``FULLY_CHECKED``. Every numpydoc check is enforced except those in ``NOT_YET``; among the
enforced ones: PR01 (a parameter not documented), PR02 (a documented parameter that does not
exist), RT01 (no Returns section for a function that returns), GL07 (section order), PR05 / RT02
/ RT04 / SS05 (type and summary lines).

Scope left out, with the reason:

- Public functions of the other core modules outside ``__all__`` (about 70: each method
  module's ``rule`` / ``acceptance`` / ``rate`` / ``positional`` ..., ``methods.base``,
  ``methods._sorted``, ``methods.optimal_plan``, ``trees.sequence_rules``) are not checked
  yet; add the modules to ``FULLY_CHECKED`` once they carry their sections.
- ``empirical`` has no ``__all__`` (its public names are its modules), so nothing there is
  checked yet; neither are ``figures`` and ``spechub_cli``.
- Classes are checked without PR01 / PR02: they are frozen result dataclasses whose fields are
  documented as attributes, not as constructor parameters.
"""

import importlib
import inspect
import pkgutil

import pytest
from numpydoc.validate import validate  # in the ``test`` extra of pyproject.toml (pure Python)

PACKAGES = (
    "spechub_theory",
    "spechub_theory.methods",
    "spechub_theory.montecarlo",
    "spechub_theory.trees",
    "lp",
)
#: numpydoc checks not enforced yet: See Also (SA01), extended summary (ES01), Examples (EX01),
#: a description under every parameter (PR07) and under every return value (RT03).
NOT_YET = {"SA01", "ES01", "EX01", "PR07", "RT03"}
#: classes document their fields as attributes (see the module docstring)
NOT_FOR_CLASSES = {"PR01", "PR02"}
#: modules whose every public function is checked, not only the names in ``__all__`` (for
#: ``lp``: every module of the package)
FULLY_CHECKED = (
    "lp",
    "spechub_theory.acceptance",
    "spechub_theory.distributions",
    "spechub_theory.draft_laws",
    "spechub_theory.methods",  # the package's __init__ only, not its method modules
    "spechub_theory.montecarlo.audit_stats",
    "spechub_theory.montecarlo.compare",
    "spechub_theory.montecarlo.kernels",
    "spechub_theory.montecarlo.simulation",
    "spechub_theory.montecarlo.stats",
    "spechub_theory.trees.cost",
    "spechub_theory.trees.exact",
    "spechub_theory.trees.lossless",
    "spechub_theory.trees.markov",
    "spechub_theory.trees.sequence_exact",
    "spechub_theory.trees.sequence_lossless",
    "spechub_theory.trees.simulation",
    "spechub_theory.trees.synthetic",
    "spechub_theory.trees.traversal_dp",
    "spechub_theory.trees.walk",
)
#: modules left out of the check (none at present)
SKIPPED_MODULES: set[str] = set()


def _public_objects():
    seen = {}
    for package in PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or obj.__module__ in SKIPPED_MODULES:
                continue
            seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    for package in FULLY_CHECKED:
        root = importlib.import_module(package)
        names = [package]
        if package == "lp":
            names += [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")]
        for module_name in names:
            module = importlib.import_module(module_name)
            for name, obj in vars(module).items():
                if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module_name:
                    seen.setdefault(f"{module_name}.{obj.__qualname__}", obj)
    return sorted(seen.items())


PUBLIC = _public_objects()


def _half_documented(p, q):
    """Return the sum of p and q.

    Parameters
    ----------
    p : float
        A number.
    """
    return p + q


def test_the_public_api_is_found_and_the_check_bites():
    assert len(PUBLIC) > 45
    codes = {code for code, _ in validate(f"{__name__}._half_documented")["errors"]}
    assert {"PR01", "RT01"} <= codes


@pytest.mark.parametrize("path, obj", PUBLIC, ids=[path for path, _ in PUBLIC])
def test_public_docstring_passes_numpydoc_validate(path, obj):
    skip = NOT_YET | (NOT_FOR_CLASSES if inspect.isclass(obj) else set())
    errors = [f"{code} {message}" for code, message in validate(path)["errors"] if code not in skip]
    assert errors == [], path
