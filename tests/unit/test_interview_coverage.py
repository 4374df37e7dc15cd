"""Coverage arithmetic: segments, gaps and the seam tolerance."""

from __future__ import annotations

import pytest

from agent.interview.coverage import camera_coverage, holes, union


def test_union_merges_touching_and_overlapping_intervals() -> None:
    assert union([(5, 7), (0, 2), (2, 3), (6, 9), (4, 4)]) == [(0, 3), (5, 9)]


def test_holes_are_what_the_union_leaves_out() -> None:
    assert holes([(1, 2), (4, 5)], 0, 6) == [(0, 1), (2, 4), (5, 6)]
    assert holes([], 0, 3) == [(0, 3)]


def test_contiguous_segments_cover_the_whole_session() -> None:
    cov, bad = camera_coverage(0, 30, [(0, 10), (10, 20), (20, 30.2)], [], tolerance=2)
    assert cov == 1.0 and bad == []


def test_seams_shorter_than_the_tolerance_are_not_gaps() -> None:
    # e.g. the second camera's first frame 0.3 s after the session began
    cov, bad = camera_coverage(0, 20, [(0.3, 10), (10.1, 19.9)], [], tolerance=2)
    assert cov == 1.0 and bad == []


def test_a_recorded_gap_counts_even_inside_a_segment() -> None:
    # a frozen picture: the segment has frames, the gap says they are not real
    cov, bad = camera_coverage(0, 20, [(0, 20)], [(5, 8)], tolerance=2)
    assert cov == pytest.approx(0.85) and bad == [(5, 8)]


def test_an_unexplained_hole_longer_than_the_tolerance_counts() -> None:
    cov, bad = camera_coverage(0, 20, [(0, 5), (10, 20)], [], tolerance=2)
    assert cov == pytest.approx(0.75) and bad == [(5, 10)]


def test_gap_and_hole_for_the_same_outage_are_not_counted_twice() -> None:
    cov, bad = camera_coverage(0, 20, [(0, 5), (10, 20)], [(4.8, 10.1)], tolerance=2)
    assert bad == [(4.8, 10.1)]
    assert cov == pytest.approx(1 - 5.3 / 20)


def test_nothing_recorded_is_zero() -> None:
    cov, _ = camera_coverage(0, 10, [], [], tolerance=2)
    assert cov == 0.0
