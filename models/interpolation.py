"""``np.interp`` over fixed knots, for many values at once: the same numbers, found faster.

The fuzzy evaluator's frozen normalisation (:meth:`models.fuzzy.FuzzyValueClassifier.normalize`)
is a piecewise-linear map through up to ~1,000 knots per factor, applied to
every customer. ``np.interp`` binary-searches the knots for each value
(~10 dependent, cache-missing steps); :class:`KnotTable` instead puts the
value in one of ``8 × knots`` equal-width buckets by arithmetic, starts from
the number of knots in the buckets below it and finishes with the few
branch-free steps that the fullest bucket needs, all as whole-array NumPy
operations. The result is then computed with ``np.interp``'s own formula
(slope · (x − xₖ) + fₖ, the ends held flat), so it equals ``np.interp``
bit for bit (``tests/models/test_interpolation.py`` checks it).

Why the bucket start is exact: the bucket of a value is a non-decreasing
function of the value (a subtraction, a positive scaling, ``floor`` and a
clip, each monotone in IEEE arithmetic), computed the same way for the knots.
A knot in a lower bucket than x is therefore below x and one in a higher
bucket above it, so the count of knots ≤ x lies between the knots counted
before x's bucket and those up to its end; the steps settle it within.
"""

from __future__ import annotations

import numpy as np

SMALL = 2048
"""Below this many values ``np.interp`` itself is used (fewer calls; the same numbers)."""
BUCKETS_PER_KNOT = 8
BLOCK = 32_768
"""Values per pass of the steps (their temporaries fit the CPU cache)."""


class KnotTable:
    """``np.interp(x, xp, fp)`` for fixed increasing ``xp`` (unique) and ``fp``, over arrays."""

    def __init__(self, xp: np.ndarray, fp: np.ndarray) -> None:
        self.xp, self.fp = np.asarray(xp, dtype=float), np.asarray(fp, dtype=float)
        n = len(self.xp)
        if n < 2 or not np.all(np.diff(self.xp) > 0):
            raise ValueError("KnotTable needs two or more strictly increasing knots")
        self.lo = self.xp[0]
        self.buckets = BUCKETS_PER_KNOT * n
        self.scale = self.buckets / (self.xp[-1] - self.xp[0])
        self.slope = np.diff(self.fp) / np.diff(self.xp)  # np.interp's slopes, as it takes them
        of_knot = self._bucket(self.xp)
        edges = np.arange(self.buckets)
        self.below = np.searchsorted(of_knot, edges, side="left")  # knots in lower buckets
        widest = int((np.searchsorted(of_knot, edges, side="right") - self.below).max())
        self.steps = [1 << k for k in reversed(range(widest.bit_length()))]
        padded = np.concatenate([self.xp, np.full(sum(self.steps) + 1, np.inf)])
        self.probes = [padded[step - 1 :] for step in self.steps]  # knot count + step − 1
        # per count c of knots ≤ x: x ↦ (x − xs[c])·slopes[c] + fs[c], flat beyond either end
        self.xs = np.concatenate([self.xp[:1], self.xp[:-1], self.xp[-1:]])
        self.slopes = np.concatenate([[0.0], self.slope, [0.0]])
        self.fs = np.concatenate([self.fp[:1], self.fp[:-1], self.fp[-1:]])

    def _bucket(self, x: np.ndarray) -> np.ndarray:
        """The bucket of each value (0 … buckets − 1; values outside the knots at the ends)."""
        b = np.subtract(x, self.lo)
        b *= self.scale
        np.maximum(b, 0, out=b)  # np.clip's bounds, without its per-call checks
        np.minimum(b, self.buckets - 1, out=b)
        return b.astype(np.intp)  # truncation: floor, the values being ≥ 0

    def __call__(self, x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``np.interp(x, xp, fp)`` for finite 1-D ``x`` (into ``out`` if given).

        Long arrays go :data:`BLOCK` values at a time, so that the steps'
        temporaries stay in the CPU cache.
        """
        x = np.asarray(x, dtype=float)
        out = np.empty(len(x)) if out is None else out
        if len(x) < SMALL:
            out[:] = np.interp(x, self.xp, self.fp)
            return out
        for start in range(0, len(x), BLOCK):
            self._interp(x[start : start + BLOCK], out[start : start + BLOCK])
        return out

    def _interp(self, x: np.ndarray, out: np.ndarray) -> None:
        count = self.below[self._bucket(x)]  # knots ≤ x, counted up to x's bucket
        for step, probe in zip(self.steps, self.probes, strict=True):
            found = probe[count] <= x
            count += found if step == 1 else found * step
        # x held within the knots, so that the flat ends multiply a finite difference by 0
        np.maximum(x, self.xp[0], out=out)
        np.minimum(out, self.xp[-1], out=out)
        out -= self.xs[count]
        out *= self.slopes[count]
        out += self.fs[count]
