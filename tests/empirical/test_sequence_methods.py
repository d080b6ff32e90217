"""Decoding settings with the sequence-level verifiers: block off a chain and the torch engine
(which has no khisti_is) are clear errors before any model is loaded."""

import pytest

pytest.importorskip("torch")

from empirical.run import DECODE_METHODS, DecodeConfig  # noqa: E402


def test_new_verifiers_are_decode_methods():
    assert {"block", "traversal", "khisti_is"} <= set(DECODE_METHODS)


@pytest.mark.parametrize("trees, methods, engine, match", [
    (("2^3",), ("block",), "auto", r"tree '2\^3' with method 'block'.*single chain"),
    (("2^3",), ("khisti_is",), "torch", r"'torch' has no 'khisti_is'"),
])
def test_bad_settings_are_value_errors(trees, methods, engine, match):
    with pytest.raises(ValueError, match=match):
        DecodeConfig(target="t", draft="d", trees=trees, methods=methods, engine=engine).validated()
