"""Numpydoc sections of the public API checked by a tool made for it: ``numpydoc.validate``.

pydocstyle (``test_docstrings.py``) checks that sections are well formed but not that they are
there; this test asks numpydoc's own validator, object by object, for every public function,
every public class and every public method of a public class (no leading underscore, defined in
the module, not imported) in every module of the packages in ``CHECKED``. Every numpydoc check is
enforced except those in ``NOT_YET``; among the enforced ones: PR01 (a parameter not
documented), PR02 (a documented parameter that does not exist), RT01 (no Returns section for a
function that returns), YD01 (no Yields section for a generator), GL07 (section order), PR05 /
RT02 / RT04 / SS05 / SS06 (type and summary lines).

numpydoc does not ask for Raises sections, so an AST scan does: a public function or method that
raises an exception class in its own body names that class in its Raises section.

Classes are checked without PR01 / PR02: they are frozen result dataclasses whose fields are
documented as attributes, not as constructor parameters. Properties are attributes, not checked.
"""

import ast
import importlib
import inspect
import pathlib
import pkgutil

import pytest
from numpydoc.validate import validate  # in the ``test`` extra of pyproject.toml (pure Python)

#: packages whose every module is checked
CHECKED = ("spechub_theory", "lp", "empirical", "figures", "spechub_cli")
#: numpydoc checks not enforced yet: See Also (SA01), extended summary (ES01), Examples (EX01),
#: a description under every parameter (PR07) and under every return value (RT03).
NOT_YET = {"SA01", "ES01", "EX01", "PR07", "RT03"}
#: classes document their fields as attributes (see the module docstring)
NOT_FOR_CLASSES = {"PR01", "PR02"}


def _members(module_name: str, module):
    """(dotted path, object) of the public functions, classes and methods defined in one module."""
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module_name:
            continue
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module_name}.{obj.__qualname__}", obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                function = member.__func__ if isinstance(member, (staticmethod, classmethod)) else member
                if not attr.startswith("_") and inspect.isfunction(function):
                    yield f"{module_name}.{obj.__qualname__}.{attr}", function


def _public_objects():
    seen = {}
    for package in CHECKED:
        root = importlib.import_module(package)
        for module_name in [package] + [info.name for info in pkgutil.walk_packages(root.__path__, package + ".")]:
            seen.update(_members(module_name, importlib.import_module(module_name)))
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
    assert len(PUBLIC) > 500
    codes = {code for code, _ in validate(f"{__name__}._half_documented")["errors"]}
    assert {"PR01", "RT01"} <= codes


@pytest.mark.parametrize("path, obj", PUBLIC, ids=[path for path, _ in PUBLIC])
def test_public_docstring_passes_numpydoc_validate(path, obj):
    skip = NOT_YET | (NOT_FOR_CLASSES if inspect.isclass(obj) else set())
    errors = [f"{code} {message}" for code, message in validate(path)["errors"] if code not in skip]
    assert errors == [], path


def _raised_directly(function: ast.AST) -> set:
    """Exception classes a function raises in its own body (not in nested functions or classes)."""
    names, stack = set(), list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, ast.Raise) and node.exc is not None:
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = exc.attr if isinstance(exc, ast.Attribute) else getattr(exc, "id", "")
            if name[:1].isupper():
                names.add(name)
        stack.extend(ast.iter_child_nodes(node))
    return names


def _undocumented_raises(source: str, where: str) -> list:
    """``where:function Error`` for every exception a public function raises without a Raises entry."""
    found, todo = [], [(node, "") for node in ast.parse(source).body]
    while todo:
        node, prefix = todo.pop()
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            todo += [(child, f"{prefix}{node.name}.") for child in node.body]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            doc = ast.get_docstring(node) or ""
            section = doc.split("Raises\n------\n", 1)[1] if "Raises\n------\n" in doc else ""
            section = section.split("\n\n\n")[0]
            listed = {line.strip() for line in section.splitlines() if line and not line.startswith(" ")}
            found += [f"{where}:{prefix}{node.name} {name}" for name in sorted(_raised_directly(node) - listed)]
    return found


def test_the_raises_check_bites():
    source = 'def f(x):\n    """Do.\n\n    Raises\n    ------\n    TypeError\n        Never.\n    """\n    raise ValueError("x")\n'
    assert _undocumented_raises(source, "m") == ["m:f ValueError"]


def test_every_public_function_documents_what_it_raises():
    """A Raises section names every exception class a public function raises in its own body."""
    root = pathlib.Path(__file__).resolve().parents[1]
    found = [line for package in CHECKED for path in sorted((root / package).rglob("*.py"))
             for line in _undocumented_raises(path.read_text(), path.relative_to(root).as_posix())]
    assert found == []
