"""The typed manifest: JSON round trip, version and field checks, counts from the job's counters."""

import json

import numpy as np
import pytest

from contract.manifest import (
    FORMAT_VERSION,
    Boundaries,
    Counts,
    DatasetSpec,
    Encoding,
    Manifest,
    ManifestError,
    ShardInfo,
)
from contract.window import WindowSpec


def example() -> Manifest:
    columns = Manifest.column_infos(
        ("a", "b"), count=10, mean=np.array([1.0, 2.0]), std=np.array([0.5, 1.0]), minimum=np.array([0.0, 0.0]),
        maximum=np.array([2.0, 4.0]), center=np.array([1.0, 0.0]), scale=np.array([0.5, 1.0]),
        quantiles={"q50": np.array([1.0, 2.0])})
    shards = {"train": (ShardInfo("train-00000-of-00001.tfrecord", 7, 100, "ab"),),
              "val": (ShardInfo("val-00000-of-00001.tfrecord", 2, 40, "cd"),)}
    counts = {"rows_read": 12, "rows_dropped.nan_or_inf": 2, "rows_dropped.duplicate_timestamp": 0, "rows.train": 8,
              "rows.val": 2, "files_read.timestamp": 3, "segments_too_short": 1}
    return Manifest.build(
        created="now", spec=DatasetSpec(time_column="t", features=("a", "b"), targets=("b",)),
        window=WindowSpec(look_back=4, horizon=2, target_sequence=True), time_kind="integer", time_range=(0, 11),
        step=1, max_gap=1, boundaries=Boundaries(8, 10), scaler="standard", columns=columns, shards=shards,
        counts=counts, units=1, encoding=Encoding(block_size=16), options={"seed": 1})


def test_build_derives_counts_shapes_and_scaled_flags():
    m = example()
    assert m.format_version == FORMAT_VERSION
    assert m.counts.rows_dropped == {"nan_or_inf": 2} and m.counts.rows_rejected == 2
    assert m.counts.windows == {"train": 7, "val": 2, "test": 0} and m.counts.files == 3
    assert m.counts.rows_per_split == {"train": 8, "val": 2, "test": 0}
    assert m.x_shape == (4, 2) and m.y_shape == (2, 1)
    assert [c.scaled for c in m.columns] == [True, False] and m.column("a").quantiles == {"q50": 1.0}
    assert m.shards["test"] == () and m.windows("train") == 7
    assert m.features == ("a", "b") and m.task == "regression"


def test_json_round_trip_stores_the_window_once():
    m = example()
    text = m.to_json()
    assert Manifest.from_json(text) == m
    d = json.loads(text)
    assert d["window"] == {"look_back": 4, "horizon": 2, "stride": 1, "target_sequence": True}
    assert "look_back" not in json.dumps({k: v for k, v in d.items() if k != "window"})


def test_timestamp_split_boundaries_are_also_written_as_iso_times():
    import dataclasses

    m = dataclasses.replace(example(), time_kind="timestamp",
                            split_boundaries=Boundaries(1391621219999999992, 1391700000000000000))
    d = json.loads(m.to_json())["split_boundaries"]
    assert d == {"val_start": 1391621219999999992, "test_start": 1391700000000000000,
                 "val_start_time": "2014-02-05T17:26:59.999999992", "test_start_time": "2014-02-06T15:20:00.000000000"}
    assert Manifest.from_json(m.to_json()) == m
    assert "_time" not in json.dumps(json.loads(example().to_json())["split_boundaries"])  # integer time: none


def test_old_versions_unknown_fields_and_garbage_are_refused():
    d = json.loads(example().to_json())
    with pytest.raises(ManifestError, match="format_version 1"):
        Manifest.from_json(json.dumps({**d, "format_version": 1}))
    with pytest.raises(ManifestError, match="unknown fields"):
        Manifest.from_json(json.dumps({**d, "surprise": 1}))
    with pytest.raises(ManifestError, match="lacks or mangles"):
        Manifest.from_json(json.dumps({k: v for k, v in d.items() if k != "window"}))
    with pytest.raises(ManifestError, match="not valid JSON"):
        Manifest.from_json("{")


def test_boundaries_split_rows_by_time():
    np.testing.assert_array_equal(Boundaries(10, 20).split_of(np.array([0, 9, 10, 19, 20, 99])), [0, 0, 1, 1, 2, 2])
    assert Counts().rows_read == 0


def test_a_version_2_manifest_reads_with_the_version_3_defaults():
    """Datasets written before calendar features and per-series scaling still train."""
    d = json.loads(example().to_json())
    del d["scale_by"], d["spec"]["calendar"], d["counts"]["rows_scaled_with_global_stats"]
    old = Manifest.from_json(json.dumps({**d, "format_version": 2}))
    assert old.calendar == () and old.scale_by == "global" and old.file_features == old.features
    assert old.windows("backtest") == 0
    with pytest.raises(ManifestError, match="format_version 4; this seqscale reads versions 2, 3"):
        Manifest.from_json(json.dumps({**d, "format_version": 4}))
