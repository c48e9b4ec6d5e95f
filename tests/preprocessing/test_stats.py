"""Scaling statistics against numpy, independent of partitioning; the Beam CombineFn wrapper."""

import pickle

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from preprocessing.errors import InputError
from preprocessing.stats import (
    STATS_BLOCK_ROWS,
    ColumnStats,
    QuantileSketch,
    merge_all,
    scaling_from_stats,
)
from preprocessing.transforms import MergeStatsFn


def random_partition(values, rng, parts):
    cuts = np.sort(rng.choice(np.arange(1, len(values)), size=parts - 1, replace=False))
    return np.split(values, cuts)


@pytest.mark.parametrize("parts", [1, 2, 7, 100])
def test_merged_stats_equal_numpy(parts):
    rng = np.random.default_rng(parts)
    # offsets and scales of very different size stress the merge numerically
    values = rng.normal(size=(5000, 4)) * [1, 1e3, 1e-3, 5] + [0, 1e6, -3, 1e9]
    blocks = random_partition(values, rng, parts)
    rng.shuffle(blocks)
    s = merge_all((ColumnStats.of(b) for b in blocks), 4)  # a generator, as Beam may pass
    assert s.count == len(values)
    np.testing.assert_allclose(s.mean, values.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(s.std, values.std(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(s.min, values.min(axis=0))
    np.testing.assert_array_equal(s.max, values.max(axis=0))
    assert s.mean.dtype == np.float64 and s.m2.dtype == np.float64


def test_rows_longer_than_a_block_are_merged_blockwise_and_equal_numpy():
    """ColumnStats.of works in blocks of STATS_BLOCK_ROWS rows; the quantile sketch still sees all rows."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(int(2.5 * STATS_BLOCK_ROWS), 3)) * [1, 1e3, 5] + [0, 1e6, 1e9]
    s = ColumnStats.of(values, quantiles=True)
    assert s.count == len(values)
    np.testing.assert_allclose(s.mean, values.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(s.std, values.std(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(s.min, values.min(axis=0))
    np.testing.assert_array_equal(s.max, values.max(axis=0))
    assert sum(len(level) * 2**h for h, level in enumerate(s.sketch.levels)) == len(values)


def test_empty_one_row_and_pickle_round_trip():
    empty = ColumnStats.of(np.zeros((0, 3)))
    assert empty.count == 0
    one = ColumnStats.of(np.array([[1.0, 2.0, 3.0]]))
    merged = pickle.loads(pickle.dumps(empty)).merge(pickle.loads(pickle.dumps(one)))
    assert merged.count == 1
    np.testing.assert_array_equal(merged.mean, [1, 2, 3])
    np.testing.assert_array_equal(merged.var, [0, 0, 0])
    assert ColumnStats.empty(2).merge(ColumnStats.empty(2)).count == 0


def test_constant_column_is_an_error_naming_it_unless_unscaled():
    s = ColumnStats.of(np.column_stack([np.arange(10.0), np.full(10, 3.0)]))
    with pytest.raises(InputError, match=r"column 'flat' of data/\*\.csv has zero spread.*--unscaled flat"):
        scaling_from_stats(s, ("a", "flat"), kind="standard", source="data/*.csv")
    sc = scaling_from_stats(s, ("a", "flat"), kind="standard", unscaled=["flat"])
    assert sc.scale[1] == 1 and sc.center[1] == 0


def test_first_too_large_finds_the_value_whose_square_overflows():
    from preprocessing.stats import first_too_large

    v = np.zeros((5, 3))
    assert first_too_large(v) is None
    v[3, 2], v[4, 0] = -2e154, 1e200
    assert first_too_large(v) == (3, 2)
    with np.errstate(over="ignore"):
        assert np.isinf(np.float64(2e154) ** 2)


def test_overflowing_values_are_reported():
    s = ColumnStats.of(np.array([[1e300], [-1e300], [1e300]]))
    with pytest.raises(InputError, match="overflow float64"):
        scaling_from_stats(s, ("big",), kind="standard")


def test_minmax_and_robust_scaling():
    rng = np.random.default_rng(0)
    v = rng.exponential(size=(2001, 2))
    s = ColumnStats.of(v, quantiles=True)
    mm = scaling_from_stats(s, ("a", "b"), kind="minmax")
    scaled = mm.apply(v)
    np.testing.assert_allclose(scaled.min(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(scaled.max(axis=0), 1, atol=1e-12)
    q = s.sketch.quantiles([0.25, 0.5, 0.75])
    np.testing.assert_allclose(q, np.quantile(v, [0.25, 0.5, 0.75], axis=0), rtol=1e-12)  # exact when small
    rb = scaling_from_stats(s, ("a", "b"), kind="robust", quantiles=q)
    np.testing.assert_allclose(rb.center, np.median(v, axis=0))
    np.testing.assert_allclose(mm.invert(mm.apply(v)), v)


def test_quantile_sketch_is_accurate_when_compacting_and_merged():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(200_000, 2)) * [1, 100]
    sketches = []
    for block in np.array_split(v, 37):
        q = QuantileSketch.empty(2, k=1024)
        q.add(block)
        sketches.append(q)
    acc = sketches[0]
    for q in sketches[1:]:
        acc.merge(q)
    assert sum(len(lv) for lv in acc.levels) < 20_000  # it did compact
    got = acc.quantiles([0.25, 0.5, 0.75])
    # rank error below 1%: compare the ranks of the answers
    for c in range(2):
        ranks = np.searchsorted(np.sort(v[:, c]), got[:, c]) / len(v)
        np.testing.assert_allclose(ranks, [0.25, 0.5, 0.75], atol=0.01)


def test_merge_stats_combinefn_in_a_pipeline():
    rng = np.random.default_rng(3)
    values = rng.normal(size=(999, 3))
    blocks = [ColumnStats.of(b) for b in np.array_split(values, 13)]

    def check(results):
        (s,) = results
        assert s.count == 999
        np.testing.assert_allclose(s.mean, values.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(s.std, values.std(axis=0), rtol=1e-9)

    with TestPipeline() as p:
        out = p | beam.Create(blocks) | beam.CombineGlobally(MergeStatsFn(3, False))
        assert_that(out | beam.Map(lambda s: s.count), equal_to([999]), label="count")
        assert_that(out, check)
