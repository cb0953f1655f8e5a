"""Analytic hierarchy process (AHP): weights from a pairwise-comparison matrix.

References
----------
Saaty, T. L. (1980). *The Analytic Hierarchy Process*. McGraw-Hill.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RANDOM_INDEX = {
    1: 0.0,
    2: 0.0,
    3: 0.58,
    4: 0.90,
    5: 1.12,
    6: 1.24,
    7: 1.32,
    8: 1.41,
    9: 1.45,
    10: 1.49,
}
"""Saaty's random consistency index RI(n)."""

MAX_CONSISTENCY_RATIO = 0.10


class InconsistentJudgementsError(ValueError):
    """A comparison matrix whose consistency ratio is 0.10 or more."""


@dataclass(frozen=True)
class AHPResult:
    """Weights ``w`` (summing to 1), ``lambda_max``, ``ci`` and ``cr`` of one matrix."""

    weights: np.ndarray
    lambda_max: float
    ci: float
    cr: float


def ahp_weights(
    comparison: np.ndarray | list[list[float]], *, name: str = "comparison matrix"
) -> AHPResult:
    """Weights of a pairwise-comparison matrix on Saaty's 1–9 scale.

    The weights are the normalised principal eigenvector; CI = (λmax − n)/(n − 1)
    and CR = CI / RI(n). A matrix with CR ≥ 0.10 is rejected.

    Parameters
    ----------
    comparison : (n, n) array
        ``a[i, j]`` = how much more important child i is than child j;
        positive, with ``a[j, i] = 1 / a[i, j]`` and ones on the diagonal.
    name : str
        Where the matrix comes from, used in error messages.

    Raises
    ------
    ValueError
        If the matrix is not square, not positive or not reciprocal.
    InconsistentJudgementsError
        If CR ≥ 0.10.

    Examples
    --------
    >>> r = ahp_weights([[1, 3, 5], [1/3, 1, 3], [1/5, 1/3, 1]])
    >>> np.round(r.weights, 4), round(r.cr, 4)
    (array([0.637 , 0.2583, 0.1047]), 0.0332)
    """
    a = np.asarray(comparison, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"{name}: must be square, got shape {a.shape}")
    n = a.shape[0]
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name}: judgements must be positive numbers")
    if not np.allclose(a * a.T, 1.0, rtol=1e-3):
        raise ValueError(f"{name}: must be reciprocal (a[j][i] = 1/a[i][j], ones on the diagonal)")
    if n == 1:
        return AHPResult(np.ones(1), 1.0, 0.0, 0.0)
    eigenvalues, eigenvectors = np.linalg.eig(a)
    k = int(np.argmax(eigenvalues.real))
    vector = np.abs(eigenvectors[:, k].real)
    lambda_max = float(eigenvalues[k].real)
    ci = (lambda_max - n) / (n - 1)
    ri = RANDOM_INDEX.get(n)
    if ri is None:
        raise ValueError(
            f"{name}: no random index for n={n}; use at most {max(RANDOM_INDEX)} children"
        )
    cr = ci / ri if ri > 0 else 0.0
    if cr >= MAX_CONSISTENCY_RATIO:
        raise InconsistentJudgementsError(
            f"{name}: inconsistent judgements, consistency ratio CR = {cr:.3f} "
            f"≥ {MAX_CONSISTENCY_RATIO} (λmax = {lambda_max:.4f}, n = {n}). "
            "Revise the pairwise comparisons so that they agree "
            "(if A > B and B > C, then A > C by roughly the product)."
        )
    return AHPResult(vector / vector.sum(), lambda_max, ci, cr)


def node_weights(
    comparison: list[list[float]] | None, weights: list[float] | None, n_children: int, *, name: str
) -> np.ndarray:
    """Weights of a tree node's children: from an AHP matrix, direct weights, or equal."""
    if comparison is not None:
        return ahp_weights(comparison, name=name).weights
    if weights is not None:
        w = np.asarray(weights, dtype=float)
        if np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"{name}: weights must be non-negative with a positive sum")
        return w / w.sum()
    return np.full(n_children, 1.0 / n_children)
