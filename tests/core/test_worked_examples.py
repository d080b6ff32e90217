"""Every closed form reproduces the worked examples of theory.md 6.1 to 6 decimals."""

import numpy as np
import pytest

from spechub_theory import acceptance_rates
from spechub_theory.methods import kseq, spechub
from worked_examples import WORKED_EXAMPLES, WORKED_EXAMPLES_K3


@pytest.mark.parametrize("name", sorted(WORKED_EXAMPLES))
def test_worked_example_rates(name):
    p, q, expected, _, _ = WORKED_EXAMPLES[name]
    rates = acceptance_rates(p, q, k=2)
    for method, value in expected.items():
        assert round(float(rates[method]), 6) == pytest.approx(value, abs=1e-12), method
    assert float(rates.tv) == pytest.approx(1 - expected["single"], abs=1e-12)


@pytest.mark.parametrize("name", [n for n in sorted(WORKED_EXAMPLES) if WORKED_EXAMPLES[n][3]])
def test_worked_example_spechub_split_and_rho(name):
    p, q, _, split, rho = WORKED_EXAMPLES[name]
    assert np.round(spechub.positional(p, q, 2), 6).tolist() == pytest.approx(list(split), abs=1e-12)
    assert round(float(kseq.optimal_rho(p, q, 2)), 6) == pytest.approx(rho, abs=1e-12)


@pytest.mark.parametrize("name", sorted(WORKED_EXAMPLES_K3))
def test_worked_example_k3(name):
    p, q = WORKED_EXAMPLES[name][:2]
    rates = acceptance_rates(p, q, k=3)
    for method, value in WORKED_EXAMPLES_K3[name].items():
        assert round(float(rates[method]), 6) == pytest.approx(value, abs=1e-12), method
    assert "exact" in rates.notes["rrs_wor"]


def test_rrs_multiplier_is_one_plus_tv():
    from spechub_theory.methods import rrs

    p, q, expected, _, _ = WORKED_EXAMPLES["E3"]
    c = rrs.multipliers(np.array(p), np.array(q), 3)
    assert c.tolist() == pytest.approx([1.0, 1.4, 1.68], abs=1e-12)
