"""Window arithmetic against tf.keras.utils.timeseries_dataset_from_array and brute force."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import pytest
import tensorflow as tf

from contract.window import WindowSpec
from preprocessing.window import (
    gather_windows,
    grid_phase_ok,
    make_windows,
    segment_starts,
    split_windows,
    unit_assignments,
    window_starts,
)


def keras_windows(x, y, look_back, horizon, stride=1):
    if len(x) < look_back + horizon:
        return np.zeros((0, look_back, x.shape[1])), np.zeros((0, y.shape[1]))
    if stride >= len(x) - horizon:
        pytest.skip("keras refuses sequence_stride >= data length")
    ds = tf.keras.utils.timeseries_dataset_from_array(
        x[:-horizon], y[look_back - 1 + horizon :], sequence_length=look_back, sequence_stride=stride, batch_size=10_000
    )
    xs, ys = zip(*[(a.numpy(), b.numpy()) for a, b in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("n", [1, 5, 6, 7, 50])
@pytest.mark.parametrize("look_back,horizon,stride", [(1, 1, 1), (5, 1, 1), (5, 3, 1), (4, 2, 3), (10, 1, 7)])
def test_make_windows_equals_keras(n, look_back, horizon, stride):
    x = np.arange(n * 2, dtype=np.float64).reshape(n, 2)
    y = np.arange(n, dtype=np.float64)[:, None] * 10
    got_x, got_y = make_windows(x, y, WindowSpec(look_back, horizon, stride))
    ref_x, ref_y = keras_windows(x, y, look_back, horizon, stride)
    assert got_x.shape[0] == ref_x.shape[0]
    np.testing.assert_array_equal(got_x, ref_x)
    np.testing.assert_array_equal(got_y, ref_y)


def test_window_convention_on_arange():
    x = np.arange(10.0)[:, None]
    got_x, got_y = make_windows(x, x, WindowSpec(look_back=3, horizon=2))
    # window ending at t=2 has inputs x[0..2] and target y[4]
    np.testing.assert_array_equal(got_x[0, :, 0], [0, 1, 2])
    assert got_y[0, 0] == 4
    assert len(got_x) == 10 - 3 - 2 + 1


def test_target_sequence():
    x = np.arange(12.0)[:, None]
    _, y = make_windows(x, x, WindowSpec(look_back=4, horizon=3, target_sequence=True))
    np.testing.assert_array_equal(y[0, :, 0], [4, 5, 6])
    np.testing.assert_array_equal(y[-1, :, 0], [9, 10, 11])


def test_segments_split_at_gaps_and_windows_never_cross():
    t = np.array([0, 1, 2, 3, 10, 11, 12, 13, 14, 30])
    begins = segment_starts(t, max_gap=2)
    np.testing.assert_array_equal(begins, [0, 4, 9])
    starts = window_starts(len(t), WindowSpec(look_back=2, horizon=1), segment_begins=begins)
    for s in starts:
        assert np.all(np.diff(t[s : s + 3]) <= 2)
    assert len(starts) == 2 + 3 + 0


def test_split_windows_requires_first_and_target_in_same_split():
    split = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2], dtype=np.int8)
    starts = np.arange(0, 7)
    sid, inside = split_windows(starts, split, WindowSpec(look_back=2, horizon=2))
    # window s spans rows s..s+3
    expected = [split[s] == split[s + 3] for s in starts]
    assert list(inside) == expected
    assert list(sid) == list(split[starts])


def test_grid_phase_matches_sequence_stride_on_regular_series():
    t = np.arange(0, 100, 5)
    starts = window_starts(len(t), WindowSpec(look_back=3, horizon=1))
    keep = grid_phase_ok(t[starts], t0=0, step=5, stride=4)
    np.testing.assert_array_equal(starts[keep], window_starts(len(t), WindowSpec(look_back=3, horizon=1), stride=4))


@pytest.mark.parametrize("span,look_back,horizon", [(7, 3, 1), (20, 6, 2), (3, 5, 2), (50, 5, 1)])
def test_unit_assignment_owns_each_window_once_with_all_rows(span, look_back, horizon):
    """Brute force: every window is owned by exactly one chunk, which holds all its rows."""
    rng = np.random.default_rng(span)
    t = np.cumsum(rng.integers(1, 3, size=200))  # steps of 1 or 2; max_gap 2
    max_gap = 2
    rows, chunks, owned = unit_assignments(t, t0=int(t[0]), span=span, halo_after=(look_back + horizon - 1) * max_gap)
    members = {}
    for r, c, o in zip(rows, chunks, owned, strict=True):
        members.setdefault(int(c), {})[int(r)] = bool(o)
    starts = window_starts(len(t), WindowSpec(look_back, horizon))
    for s in starts:
        owners = [c for c, m in members.items() if m.get(int(s))]
        assert len(owners) == 1
        need = range(s, s + look_back + horizon)
        assert all(r in members[owners[0]] for r in need)
    # each row owned exactly once
    assert owned.sum() == len(t)


def test_gather_windows_shapes():
    x = np.zeros((20, 3))
    y = np.zeros((20, 2))
    xb, yb = gather_windows(x, y, np.array([0, 5]), WindowSpec(look_back=4, horizon=2, target_sequence=True))
    assert xb.shape == (2, 4, 3) and yb.shape == (2, 2, 2)


def test_short_segment_gaps_by_the_gap_that_joins_them():
    from preprocessing.window import segment_starts, short_segment_gaps

    # series 0: rows 0-9 (long), gap 3, rows 10-12 (short), gap 5, rows 13-24 (long); series 1: 4 rows alone
    t0 = np.concatenate([np.arange(10), 12 + np.arange(3), 19 + np.arange(12)])
    times = np.concatenate([t0, np.arange(4)]).astype(np.int64)
    series = np.array([0] * 25 + [1] * 4)
    begins = np.union1d(segment_starts(times, 1), [25])
    spec = WindowSpec(look_back=4, horizon=1)
    owned = np.ones(len(times), bool)
    assert short_segment_gaps(times, series, owned, begins, spec, step=1) == {4: 3, 0: 4}
    owned[10:13] = False  # halo rows are counted by the unit that owns them
    assert short_segment_gaps(times, series, owned, begins, spec, step=1) == {0: 4}
    assert short_segment_gaps(times[:0], series[:0], owned[:0], begins[:0], spec, step=1) == {}
