"""One argument order and one name per concept, read from the AST of every package.

The verbs on distributions take the math positionally and the options as keywords:
``(p, q, k, *, method=..., law=..., rng=...)`` (style.md, "One name per concept"; issue 13
item 5). For every public function or method with a ``p`` or ``q`` parameter: ``p`` before ``q``
before ``k``, and ``method``, ``law``, ``rng`` keyword-only. Everywhere: no parameter named
``drafts_law``/``draft_law``, ``n_draws``, ``n_samples`` or ``N`` (the draft law is ``law``, a
trial count ``n_trials``). O(files); nothing is imported.

Exempt, with the reason (``EXEMPT``):

- ``lp.result.OptimumResult.from_plan``: ``draft_law`` is the field of the result object
  (style.md C5) and a key of ``spechub lp --json``; renaming it changes the JSON.
- ``montecarlo.stats.pooled_bins``: ``n_samples`` is the size of a sample being binned, not a
  count of Monte Carlo trials.
- ``montecarlo.audit_stats.distortion`` / ``exact_audit``: ``law`` is the exact *output* law under
  audit (the subject, first), not a draft law.

Tree verbs (first parameter ``tree``: ``(tree, method, model, ...)``, ``walk_tree(tree, method,
tokens, p, q, rng)``) keep their own order for now; issue 13 leaves them to a later change.
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("spechub_theory", "lp", "empirical", "figures", "spechub_cli")
KEYWORD_ONLY = ("method", "law", "rng")
RETIRED = {"draft_law": "law", "drafts_law": "law", "n_draws": "n_trials", "n_samples": "n_trials", "N": "n_trials"}
EXEMPT = {
    "lp/result.py:OptimumResult.from_plan",
    "spechub_theory/montecarlo/stats.py:pooled_bins",
    "spechub_theory/montecarlo/audit_stats.py:distortion",
    "spechub_theory/montecarlo/audit_stats.py:exact_audit",
}


def _public_functions():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            tree = ast.parse(path.read_text(), rel)
            todo = [(node, "") for node in tree.body]
            while todo:
                node, prefix = todo.pop()
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                    todo += [(child, f"{prefix}{node.name}.") for child in node.body]
                elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                    yield f"{rel}:{prefix}{node.name}", node.args


def problems_of(where: str, args: ast.arguments) -> list:
    """What is wrong with one signature (empty when nothing)."""
    positional = [a.arg for a in args.posonlyargs + args.args]
    names = positional + [a.arg for a in args.kwonlyargs]
    problems = [f"{where}: `{old}` is `{new}` now" for old, new in RETIRED.items() if old in names]
    if ("p" in positional or "q" in positional) and positional[:1] != ["tree"]:
        math = [positional.index(x) for x in ("p", "q", "k") if x in positional]
        if math != sorted(math):
            problems.append(f"{where}: p, q, k out of order {positional}")
        problems += [f"{where}: `{x}` must be keyword-only" for x in KEYWORD_ONLY if x in positional]
    return problems


def test_the_check_bites_on_the_old_orders():
    def args(source):
        return ast.parse(source).body[0].args

    assert len(problems_of("f", args("def f(method, p, q, k, rng=None): pass"))) == 2
    assert problems_of("f", args("def f(q, p): pass")) == ["f: p, q, k out of order ['q', 'p']"]
    assert problems_of("f", args("def f(p, q, k, *, draft_law): pass")) == ["f: `draft_law` is `law` now"]
    assert problems_of("f", args("def f(p, q, k, *, method, law, rng=None): pass")) == []


def test_every_verb_takes_p_q_k_then_keywords():
    problems = [line for where, args in _public_functions() if where not in EXEMPT for line in problems_of(where, args)]
    assert problems == []
