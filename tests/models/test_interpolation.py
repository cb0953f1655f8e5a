"""KnotTable gives np.interp's numbers bit for bit, whatever the knots and values."""

from __future__ import annotations

import numpy as np
import pytest

from valuecube.models.interpolation import SMALL, KnotTable


def _quantile_knots(base: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Knots as the fuzzy normalisation freezes them (unique quantiles, mid-rank levels)."""
    levels = np.linspace(0.0, 1.0, n)
    xp, inverse = np.unique(np.quantile(base, levels), return_inverse=True)
    return xp, np.bincount(inverse, weights=levels) / np.bincount(inverse)


@pytest.mark.parametrize("kind", ["skewed", "whole", "wide"])
@pytest.mark.parametrize("n", [2, 5, 101, 1001])
def test_equals_np_interp(kind: str, n: int) -> None:
    rng = np.random.default_rng(n)
    base = {
        "skewed": rng.lognormal(sigma=2.0, size=20_000),
        "whole": rng.integers(0, 80, 20_000).astype(float),
        "wide": rng.normal(scale=1e6, size=20_000),
    }[kind]
    xp, fp = _quantile_knots(base, n)
    if len(xp) < 2:
        xp, fp = np.array([xp[0] - 0.5, xp[0] + 0.5]), np.array([0.5, 0.5])
    x = np.concatenate(
        [
            rng.choice(base, 20_000),
            xp,  # exactly on the knots
            np.nextafter(xp, np.inf),
            np.nextafter(xp, -np.inf),
            [xp[0] - 1.0, xp[-1] + 1.0, -1e300, 1e300, 0.0],
        ]
    )
    assert len(x) >= SMALL  # the table's own path, not np.interp's
    table = KnotTable(xp, fp)
    np.testing.assert_array_equal(table(x), np.interp(x, xp, fp))
    np.testing.assert_array_equal(table(x[:10]), np.interp(x[:10], xp, fp))


def test_rejects_unsorted_knots() -> None:
    with pytest.raises(ValueError, match="increasing"):
        KnotTable(np.array([0.0, 2.0, 1.0]), np.array([0.0, 0.5, 1.0]))
