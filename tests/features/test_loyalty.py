"""Loyalty types from attachment × repeat purchase (docs/cube.md)."""

from __future__ import annotations

import numpy as np

from valuecube.features.loyalty import LOYALTY_TYPES, loyalty_type


def test_the_four_cells() -> None:
    attachment = np.array([5.0, 0.0, 5.0, 0.0, 1.0])
    repeat = np.array([9.0, 9.0, 1.0, 1.0, 2.0])
    got = loyalty_type(attachment, repeat, attachment_above=1.0, repeat_purchase_above=2.0)
    # a value equal to the threshold is not above it: low
    assert list(got) == ["super-value", "inertia", "incentive", "price", "price"]
    assert set(got) <= set(LOYALTY_TYPES)


def test_one_customer_alone_equals_in_batch() -> None:
    rng = np.random.default_rng(0)
    a, r = rng.normal(size=50), rng.normal(size=50)
    batch = loyalty_type(a, r, attachment_above=0.1, repeat_purchase_above=-0.2)
    alone = [
        loyalty_type(a[[i]], r[[i]], attachment_above=0.1, repeat_purchase_above=-0.2)[0]
        for i in range(50)
    ]
    assert list(batch) == alone
