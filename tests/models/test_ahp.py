"""AHP weights and consistency (docs/methods.md §2.2 worked example)."""

from __future__ import annotations

import numpy as np
import pytest

from valuecube.models.ahp import InconsistentJudgementsError, ahp_weights, node_weights

SAATY = [[1, 3, 5], [1 / 3, 1, 3], [1 / 5, 1 / 3, 1]]


def test_worked_example_to_four_decimals() -> None:
    r = ahp_weights(SAATY)
    np.testing.assert_allclose(np.round(r.weights, 4), [0.6370, 0.2583, 0.1047])
    assert round(r.lambda_max, 4) == 3.0385
    assert round(r.ci, 4) == 0.0193
    assert round(r.cr, 4) == 0.0332
    assert r.weights.sum() == pytest.approx(1.0)


def test_consistent_matrix_has_zero_cr() -> None:
    r = ahp_weights([[1, 2, 4], [1 / 2, 1, 2], [1 / 4, 1 / 2, 1]])
    np.testing.assert_allclose(r.weights, [4 / 7, 2 / 7, 1 / 7], atol=1e-9)
    assert r.cr == pytest.approx(0.0, abs=1e-9)


def test_inconsistent_matrix_rejected() -> None:
    bad = [[1, 9, 1 / 9], [1 / 9, 1, 9], [9, 1 / 9, 1]]
    with pytest.raises(InconsistentJudgementsError, match="consistency ratio") as info:
        ahp_weights(bad, name="tree.x")
    assert "tree.x" in str(info.value)


@pytest.mark.parametrize(
    "matrix, what",
    [
        ([[1, 3], [3, 1]], "reciprocal"),
        ([[1, 3, 5], [1 / 3, 1, 3]], "square"),
        ([[2, 1], [1, 0.5]], "reciprocal"),
        ([[1, -2], [-0.5, 1]], "positive"),
    ],
)
def test_malformed_matrix_is_value_error(matrix, what) -> None:
    with pytest.raises(ValueError, match=what):
        ahp_weights(matrix)


def test_single_child_and_node_weights() -> None:
    assert ahp_weights([[1]]).weights.tolist() == [1.0]
    np.testing.assert_allclose(node_weights(None, [2, 1, 1], 3, name="n"), [0.5, 0.25, 0.25])
    np.testing.assert_allclose(node_weights(None, None, 4, name="n"), [0.25] * 4)
    np.testing.assert_allclose(node_weights(SAATY, None, 3, name="n"), ahp_weights(SAATY).weights)
    with pytest.raises(ValueError, match="non-negative"):
        node_weights(None, [1, -1], 2, name="n")
