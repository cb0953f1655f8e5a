"""Loyalty types from attachment × repeat purchase (docs/methods.md §2.7, docs/cube.md).

A customer's loyalty is read on two axes: attachment (the attitude — how much
the customer prefers the firm) and repeat purchase (the behaviour). Each is
high or low against a threshold, and the four cells are:

============  ================  ====================
attachment    repeat purchase   loyalty type
============  ================  ====================
high          high              super-value
low           high              inertia
high          low               incentive
low           low               price
============  ================  ====================

* **super-value** — buys again and prefers the firm: the value received
  exceeds what rivals offer; protect it.
* **inertia** — buys again out of habit or switching cost, without
  preference: loyal until a rival makes switching easy.
* **incentive** — prefers the firm but buys again only when prompted
  (offers, points): incentives turn the attachment into purchases.
* **price** — neither: comes back when the price is right.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["LOYALTY_TYPES", "loyalty_type"]

LOYALTY_TYPES = ("super-value", "inertia", "incentive", "price")


def loyalty_type(
    attachment: ArrayLike,
    repeat_purchase: ArrayLike,
    *,
    attachment_above: float,
    repeat_purchase_above: float,
) -> np.ndarray:
    """The loyalty type of each customer (see the module docstring).

    Parameters
    ----------
    attachment, repeat_purchase : array_like of shape (n,)
        The two axes, more meaning more (e.g. contract length, tenure).
    attachment_above, repeat_purchase_above : float
        A customer is high on an axis when its value is above the threshold.

    Returns
    -------
    ndarray of str, one of :data:`LOYALTY_TYPES` per customer.
    """
    high_attachment = np.asarray(attachment, dtype=float) > attachment_above
    high_repeat = np.asarray(repeat_purchase, dtype=float) > repeat_purchase_above
    index = 2 * ~high_attachment + ~high_repeat  # (high, high) → 0 … (low, low) → 3
    table = np.asarray(("super-value", "incentive", "inertia", "price"), dtype=object)
    return table[index]
