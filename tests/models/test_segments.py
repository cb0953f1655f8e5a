"""The eight segments of the value cube (docs/methods.md §2.4)."""

from __future__ import annotations

import numpy as np
import pytest

from valuecube.models.segments import (
    BY_CODE,
    SEGMENT_CODES,
    SEGMENTS,
    assign_segments,
    describe_segments,
    segment_index,
)

# (CV high, PV high, RA high) -> (segment name, policy), as the segment table of docs/methods.md
TABLE = {
    (True, True, True): ("key attack-and-defend", "invest most: grow and protect"),
    (True, True, False): ("attack-and-defend", "grow, and build the capability they need"),
    (True, False, True): ("key maintain", "keep at efficient cost"),
    (True, False, False): ("maintain", "keep, watch cost to serve"),
    (False, True, True): ("key develop", "develop actively"),
    (False, True, False): ("develop", "develop selectively"),
    (False, False, True): ("hold-or-release", "low-cost service only"),
    (False, False, False): ("release", "minimal resources"),
}


def test_eight_codes_from_flags() -> None:
    flags = list(TABLE)
    scores = np.array([[8.0 if f else 2.0 for f in flag] for flag in flags])
    codes = assign_segments(scores)
    assert len(set(codes)) == 8
    names, policies = describe_segments(codes)
    for flag, code, name, policy in zip(flags, codes, names, policies, strict=True):
        assert (name, policy) == TABLE[flag]
        seg = BY_CODE[code]
        assert (seg.high_cv, seg.high_pv, seg.high_ra) == flag
    assert list(SEGMENT_CODES) == [s.code for s in SEGMENTS]
    assert segment_index(scores).tolist() == list(range(8))


def test_threshold_counts_as_high() -> None:
    at = np.array([[5.0, 5.0, 5.0], [4.9999, 5.0, 5.0]])
    assert assign_segments(at).tolist() == ["key_attack_defend", "key_develop"]
    # a custom threshold
    assert assign_segments(np.array([[6.0, 5.5, 5.9]]), threshold=6.0).tolist() == ["maintain"]


def test_original_names() -> None:
    assert [s.original_name for s in SEGMENTS] == [
        "关键攻守型",
        "攻守型",
        "关键维持型",
        "维持型",
        "关键发展型",
        "发展型",
        "弃守型",
        "放弃型",
    ]


def test_describe_unknown_code_is_missing() -> None:
    names, policies = describe_segments(np.array(["release", "nonsense"], dtype=object))
    assert names[0] == "release" and policies[0] == "minimal resources"
    assert names[1] is None or names[1] != names[1]  # NaN / None for an unknown code


@pytest.mark.parametrize("threshold", [1.0, 9.0])
def test_extreme_thresholds(threshold) -> None:
    scores = np.array([[1.0, 9.0, 5.0]])
    code = assign_segments(scores, threshold)[0]
    expected = "key_attack_defend" if threshold == 1.0 else "develop"
    assert code == expected
