"""One unit's contribution: scaled arrays, windows per split against brute force, the deal."""

import numpy as np
import pytest

from contract.manifest import Boundaries
from preprocessing import cut
from preprocessing.errors import InputError
from preprocessing.plan import Plan
from preprocessing.stats import Scaling
from tests.preprocessing.units import HOUR, config, frame, unit_of


def plan_for(unit, val_start, test_start):
    return Plan(kind="timestamp", t_min=int(unit.time.min()), t_max=int(unit.time.max()), rows=len(unit), step=HOUR,
                max_gap=int(1.5 * HOUR), span=10**6 * HOUR, buckets=1, halo_after=0, halo_before=0,
                boundaries=Boundaries(val_start, test_start))


def brute_force(unit, spec, b):
    """(split, series, last input time) of every window by loops over each series."""
    out = set()
    for s in np.unique(unit.series):
        t = np.sort(unit.time[unit.series == s])
        split = b.split_of(t)
        for start in range(len(t)):
            target = start + spec.look_back - 1 + spec.horizon
            if target < len(t) and split[start] == split[target]:
                out.add((int(split[start]), int(s), int(t[start + spec.look_back - 1])))
    return out


def test_unit_windows_match_brute_force_and_count_what_crosses_a_split():
    cfg = config(look_back=6, horizon=2)
    unit = unit_of(frame(n=120), cfg)
    t0 = int(unit.time.min())
    b = Boundaries(t0 + 60 * HOUR, t0 + 90 * HOUR)
    arrays = cut.unit_arrays(unit, Scaling(np.zeros(2), np.ones(2)), cfg)
    per_split, counts = cut.unit_windows(unit, arrays, plan_for(unit, b.val_start, b.test_start), cfg)
    got = {(i, int(unit.series[s]), int(unit.time[s + 5])) for i, starts in enumerate(per_split) for s in starts}
    assert got == brute_force(unit, cfg.window, b)
    assert counts["windows.train"] == len(per_split[0]) and counts["windows.test"] == len(per_split[2])
    # per series: windows whose first row and target row fall in different splits
    crossing = 2 * 2 * (cfg.window.span - 1)  # two series x two boundaries x (L + H - 1) starts each
    assert counts["windows_dropped.crosses_split_boundary"] == crossing


def test_unit_arrays_scale_features_and_targets():
    cfg = config()
    unit = unit_of(frame(n=50), cfg)
    scaling = Scaling(center=np.array([1.0, 2.0]), scale=np.array([2.0, 4.0]))
    a = cut.unit_arrays(unit, scaling, cfg)
    np.testing.assert_allclose(a.x, ((unit.values - [1, 2]) / [2, 4]).astype(np.float32))
    np.testing.assert_allclose(a.y[:, 0], ((unit.values[:, 1] - 2) / 4).astype(np.float32))
    assert a.x.dtype == np.float32 and len(set(a.sid.tolist())) == 2


def test_deal_is_even_and_complete_and_offset_rotates():
    perm = np.random.default_rng(0).permutation(23)
    for offset in range(4):
        parts = cut.deal(perm, 4, offset)
        assert sorted(np.concatenate(parts).tolist()) == list(range(23))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    assert [len(p) for p in cut.deal(perm, 4, 1)] == [5, 6, 6, 6]


def test_permutation_is_seeded_by_job_seed_and_unit_key():
    per_split = [np.arange(10), np.arange(10, 15), np.arange(0)]
    a = list(cut.permuted(per_split, cut.unit_rng(config(seed=1), (0, 3))))
    b = list(cut.permuted(per_split, cut.unit_rng(config(seed=1), (0, 3))))
    c = list(cut.permuted(per_split, cut.unit_rng(config(seed=2), (0, 3))))
    assert [s for s, _ in a] == ["train", "val", "test"]
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0][1], c[0][1]) and sorted(a[0][1]) == list(range(10))


def test_class_ids_are_checked():
    cfg = config(task="binary", targets=("y",))
    unit = unit_of(frame(n=40), cfg)
    with pytest.raises(InputError, match="target 'y' is .*needs class ids 0..1"):
        cut.check_targets(unit, np.arange(len(unit)), unit.values[:, [1]], cfg, "timestamp")
    cut.check_targets(unit, np.arange(len(unit)), np.zeros((len(unit), 1)), cfg, "timestamp")


def test_deal_goes_to_as_many_shards_as_the_unit_fills_blocks():
    perm = np.random.default_rng(0).permutation(1000)
    for offset in range(8):
        parts = cut.deal(perm, 8, offset, block_size=256)
        assert len(parts) == 8 and sorted(np.concatenate(parts).tolist()) == list(range(1000))
        assert sum(len(p) > 0 for p in parts) == 3  # 1000 // 256 blocks' worth
    assert sum(len(p) > 0 for p in cut.deal(perm[:40], 8, 3, block_size=256)) == 1  # a small unit: one shard
    assert [len(p) > 0 for p in cut.deal(perm[:40], 8, 3, block_size=256)].index(True) == 3  # the offset's
    assert all(len(p) == 125 for p in cut.deal(perm, 8, 0, block_size=100))  # enough for all: even
