"""WindowSpec's derived rows, counts and times against brute force on np.arange series."""

import itertools

import numpy as np
import pytest

from contract.window import WindowSpec


def brute_force(n, L, H, stride, seq):
    """Every window of n rows by the DESIGN convention, written out with loops."""
    out = []
    for s in range(0, n, stride):
        last = s + L - 1
        if last + H >= n:
            break
        inputs = list(range(s, last + 1))
        targets = list(range(last + 1, last + H + 1)) if seq else last + H
        out.append((s, inputs, targets))
    return out


@pytest.mark.parametrize("L,H,stride,seq", list(itertools.product([1, 3, 7], [1, 2, 5], [1, 3], [False, True])))
def test_rows_and_count_match_brute_force(L, H, stride, seq):
    spec = WindowSpec(look_back=L, horizon=H, stride=stride, target_sequence=seq)
    for n in (0, L + H - 1, L + H, L + H + 1, 40):
        ref = brute_force(n, L, H, stride, seq)
        assert spec.count(n) == len(ref), n
        if not ref:
            continue
        starts = np.array([r[0] for r in ref])
        np.testing.assert_array_equal(spec.input_rows(starts), [r[1] for r in ref])
        np.testing.assert_array_equal(spec.target_rows_of(starts), [r[2] for r in ref])
        np.testing.assert_array_equal(spec.last_input(starts), [r[1][-1] for r in ref])
        last_target = [r[2][-1] if seq else r[2] for r in ref]
        np.testing.assert_array_equal(spec.target_index(starts), last_target)
        np.testing.assert_array_equal(spec.start_of_last_input(spec.last_input(starts)), starts)


def test_sizes_and_shapes():
    spec = WindowSpec(look_back=24, horizon=3, target_sequence=True)
    assert (spec.span, spec.halo_rows, spec.first_target_row, spec.target_rows) == (27, 26, 26, 3)
    assert spec.x_shape(5) == (24, 5) and spec.y_shape(2) == (3, 2)
    assert WindowSpec(look_back=24, horizon=3).target_rows == 1


def test_times_and_target_distances():
    spec = WindowSpec(look_back=48, horizon=1)
    assert spec.first_input_time(100, 2) == 100 - 47 * 2 and spec.target_time(100, 2) == 102
    assert spec.target_distances.tolist() == [1]
    seq = WindowSpec(look_back=48, horizon=3, target_sequence=True)
    assert seq.target_distances.tolist() == [1, 2, 3]
    np.testing.assert_array_equal(seq.target_rows_of(np.array([0, 5])), [[48, 49, 50], [53, 54, 55]])


def test_refuses_nonsense_and_round_trips():
    with pytest.raises(ValueError, match="--look-back must be >= 1"):
        WindowSpec(look_back=0)
    spec = WindowSpec(look_back=5, horizon=2, stride=3, target_sequence=True)
    assert WindowSpec.from_dict(spec.to_dict()) == spec
