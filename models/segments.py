"""The eight segments of the value cube (docs/methods.md §2.4).

A customer is high on a dimension when its score VA is at least the
threshold (default 5, the "medium" grade). The three high/low flags
(CV, PV, RA) pick one of eight segments, each with a resource policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Segment:
    """One cell of the value cube."""

    code: str
    name: str
    original_name: str
    high_cv: bool
    high_pv: bool
    high_ra: bool
    policy: str


SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "key_attack_defend",
        "key attack-and-defend",
        "关键攻守型",
        True,
        True,
        True,
        "invest most: grow and protect",
    ),
    Segment(
        "attack_defend",
        "attack-and-defend",
        "攻守型",
        True,
        True,
        False,
        "grow, and build the capability they need",
    ),
    Segment(
        "key_maintain", "key maintain", "关键维持型", True, False, True, "keep at efficient cost"
    ),
    Segment("maintain", "maintain", "维持型", True, False, False, "keep, watch cost to serve"),
    Segment("key_develop", "key develop", "关键发展型", False, True, True, "develop actively"),
    Segment("develop", "develop", "发展型", False, True, False, "develop selectively"),
    Segment(
        "hold_or_release", "hold-or-release", "弃守型", False, False, True, "low-cost service only"
    ),
    Segment("release", "release", "放弃型", False, False, False, "minimal resources"),
)
"""The segments in table order; index = 4·[CV low] + 2·[PV low] + [RA low]."""

SEGMENT_CODES: tuple[str, ...] = tuple(s.code for s in SEGMENTS)
BY_CODE: dict[str, Segment] = {s.code: s for s in SEGMENTS}


def segment_index(scores: np.ndarray, threshold: float = 5.0) -> np.ndarray:
    """Segment index (0–7, into :data:`SEGMENTS`) of each row of (CV, PV, RA) scores."""
    low = np.asarray(scores) < threshold
    return (4 * low[:, 0] + 2 * low[:, 1] + low[:, 2]).astype(np.int64)


def assign_segments(scores: np.ndarray, threshold: float = 5.0) -> np.ndarray:
    """Segment code of each row of (CV, PV, RA) scores."""
    return np.asarray(SEGMENT_CODES, dtype=object)[segment_index(scores, threshold)]


def describe_segments(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Display names and resource policies of segment codes (vectorised lookup)."""
    codes = pd.Series(np.asarray(codes, dtype=object))
    names = codes.map({s.code: s.name for s in SEGMENTS}).to_numpy(dtype=object)
    policies = codes.map({s.code: s.policy for s in SEGMENTS}).to_numpy(dtype=object)
    return names, policies
