"""Arithmetic expressions of ``expr`` factors: what is allowed, what is rejected, NumPy rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from valuecube.features.config import FactorSpec
from valuecube.features.expressions import parse_expression
from valuecube.features.factors import compute_factor


def test_arithmetic_matches_pandas_eval() -> None:
    """The same numbers as the pandas.eval the factors used before, including division by zero."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=200),
            "b": rng.integers(-2, 3, 200).astype(float),
            "c": rng.uniform(size=200),
        }
    )
    for text in ("a * b / c - 1", "a / (b + 1)", "-a ** 2 + c % 0.3", "b // 2 + 12", "(a - b) / b"):
        expected = frame.eval(text, engine="python").to_numpy(dtype=float)
        got = parse_expression(text).evaluate(
            {n: frame[n].to_numpy() for n in parse_expression(text).names}, len(frame)
        )
        np.testing.assert_array_equal(got, expected, err_msg=text)


def test_names_functions_and_constants() -> None:
    expression = parse_expression("log1p(maximum(spend, 0)) + sqrt(abs(trend)) * 2")
    assert expression.names == ("spend", "trend")
    got = expression.evaluate(
        {"spend": np.array([-1.0, np.e - 1]), "trend": np.array([4.0, -9.0])}, 2
    )
    np.testing.assert_allclose(got, [0 + 2 * 2, 1 + 3 * 2])
    assert parse_expression("12").evaluate({}, 3).tolist() == [12.0, 12.0, 12.0]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a.__class__", "is not allowed"),
        ("__import__('os')", "not an allowed function"),
        ("open('x')", "not an allowed function"),
        ("a[0]", "is not allowed"),
        ("a > 1", "is not allowed"),
        ("'text' + a", "only numbers"),
        ("log(a, base=2)", "positional arguments only"),
        ("a +", "not a valid expression"),
        ("lambda: 1", "is not allowed"),
    ],
)
def test_anything_else_is_rejected_at_config_time(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        FactorSpec(expr=text)


def test_unknown_or_text_column_named_in_the_error() -> None:
    table = pd.DataFrame({"a": [1.0, 2.0], "plan": ["gold", "basic"]})
    with pytest.raises(
        ValueError, match=r"'missing', which is neither a column nor an earlier factor"
    ):
        compute_factor(table, "f", FactorSpec(expr="a + missing"))
    with pytest.raises(ValueError, match=r"'plan', which is not numeric"):
        compute_factor(table, "f", FactorSpec(expr="a * plan"))
