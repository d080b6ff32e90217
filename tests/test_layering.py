"""The package layering: spechub_theory < lp < empirical < figures < spechub_cli, checked two ways.

``import spechub_theory`` loads no higher package (nor torch/matplotlib), and no file of a lower
package names a higher one, in an import statement or in a string (importlib), as the project's
closing hook checks.
"""

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
ORDER = ["spechub_theory", "lp", "empirical", "figures", "spechub_cli"]


def test_import_spechub_theory_loads_no_higher_package():
    code = ("import spechub_theory, sys; bad = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'lp', 'empirical', 'figures', 'torch', 'matplotlib', 'spechub_cli'}); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
    assert out == "[]"


def test_no_lower_package_names_a_higher_one():
    found = []
    for i, low in enumerate(ORDER[:-1]):
        hi = "|".join(ORDER[i + 1:])
        pat = re.compile(rf"^\s*(from|import)\s+({hi})\b|(import_module|__import__)\(\s*[fr]?['\"]({hi})\b"
                         rf"|['\"]({hi})\.[a-z_]+(\.[a-z_]+)*['\"]", re.M)
        for f in sorted((ROOT / low).rglob("*.py")):
            found += [f"{f.relative_to(ROOT)}: {m.group(0).strip()}" for m in pat.finditer(f.read_text())]
    assert found == []
