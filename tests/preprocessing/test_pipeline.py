"""End to end on the real DirectRunner: run() on files, read the shards back, compare with an
independent numpy + Keras reference."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from preprocessing.cli import run
from preprocessing.records import iter_frames
from preprocessing.split import boundaries_from_fractions
from tests.helpers import (
    job_args,
    load_manifest,
    make_series,
    multi_series,
    read_split,
    reference_windows,
    sort_windows,
    write_files,
)

pytestmark = pytest.mark.slow
HOUR = 3_600_000_000_000


def check_against_reference(df, out, look_back=12, horizon=2):
    m = load_manifest(out)
    t_ns = df["ts"].astype("datetime64[ns]").astype(np.int64)
    # split boundaries are fractions of the global time range
    b = boundaries_from_fractions(int(t_ns.min()), int(t_ns.max()), 0.7, 0.15)
    assert m.split_boundaries == b
    assert m.step == HOUR and m.max_gap == int(1.5 * HOUR)
    ref, mean, std = reference_windows(
        df, val_start=b.val_start, test_start=b.test_start, look_back=look_back, horizon=horizon, max_gap=m.max_gap
    )
    for i, col in enumerate(m.columns):
        assert col.count == int((t_ns < b.val_start).sum())
        np.testing.assert_allclose(col.mean, mean[i], rtol=1e-9)
        np.testing.assert_allclose(col.std, std[i], rtol=1e-9)
    for split in ("train", "val", "test"):
        got = sort_windows(read_split(out, split))
        exp = ref[split]
        assert m.windows(split) == len(exp["t"]) == len(got["t"]), split
        np.testing.assert_array_equal(got["sid"], exp["sid"])
        np.testing.assert_array_equal(got["t"], exp["t"])
        np.testing.assert_allclose(got["x"], exp["x"], atol=2e-6)
        np.testing.assert_allclose(got["y"], exp["y"], atol=2e-6)
    return m


def test_multi_series_gaps_many_files_small_chunks(tmp_path):
    """Several series, uneven lengths, gaps, 3 Parquet files, chunks of 200 rows (many halos)."""
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 3, "parquet")
    run(job_args(pattern, tmp_path / "out", "--chunk-rows", "200"))
    m = check_against_reference(df, tmp_path / "out")
    assert m.counts.rows_read == len(df)
    assert m.counts.windows_dropped["crosses_split_boundary"] > 0
    assert len(m.shards["train"]) == 16 and len(m.shards["val"]) == 8
    assert not [p for p in os.listdir(tmp_path / "out") if p.startswith(".")]  # staging removed


def test_same_result_with_two_workers_and_other_file_split(tmp_path):
    """Five CSV files, one big chunk, 2 DirectRunner worker processes: same windows and stats."""
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 5, "csv", seed=3)
    run(job_args(pattern, tmp_path / "out", "--direct_num_workers", "2", "--direct_running_mode", "multi_processing"))
    check_against_reference(df, tmp_path / "out")


def test_single_series_stride_and_target_sequence_match_keras(tmp_path):
    import tensorflow as tf

    rng = np.random.default_rng(5)
    df = make_series(rng, "only", "2022-01-01", 400).drop(columns=["series"])
    pattern = write_files(df, tmp_path / "in", 2, "parquet")
    run(
        job_args(pattern, tmp_path / "out", "--stride", "3", "--train-fraction", "0.99", "--val-fraction", "0.005",
                 look_back=10, horizon=4, series=False)
    )
    m = load_manifest(tmp_path / "out")
    got = sort_windows(read_split(tmp_path / "out", "train"))
    c = m.columns
    x = ((df[list(m.features)].to_numpy() - [ci.mean for ci in c]) / [ci.std for ci in c]).astype(np.float32)
    train_rows = int((df["ts"].astype("datetime64[ns]").astype(np.int64) < m.split_boundaries.val_start).sum())
    x = x[:train_rows]
    ds = tf.keras.utils.timeseries_dataset_from_array(
        x[:-4], x[10 - 1 + 4 :, 2], sequence_length=10, sequence_stride=3, batch_size=10_000
    )
    ref_x, ref_y = (a.numpy() for a in next(iter(ds)))
    assert len(got["x"]) == len(ref_x)
    np.testing.assert_allclose(got["x"], ref_x, atol=2e-6)
    np.testing.assert_allclose(got["y"][:, 0], ref_y, atol=2e-6)

    # target sequence: y[t+1..t+H]
    run(
        job_args(pattern, tmp_path / "seq", "--target-sequence", "--train-fraction", "0.99", "--val-fraction", "0.005",
                 look_back=10, horizon=4, series=False)
    )
    seq = sort_windows(read_split(tmp_path / "seq", "train"))
    assert seq["y"].shape[1:] == (4, 1)
    np.testing.assert_allclose(seq["y"][0, :, 0], x[10:14, 2], atol=2e-6)
    np.testing.assert_allclose(seq["x"][0], x[:10], atol=2e-6)


def test_gzip_and_minmax_and_explicit_split_times(tmp_path):
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 2, "parquet")
    run(job_args(pattern, tmp_path / "out", "--compression", "gzip", "--scaler", "minmax",
                 "--val-start", "2021-02-01", "--test-start", "2021-02-10"))
    m = load_manifest(tmp_path / "out")
    assert all(s.file.endswith(".tfrecord.gz") for s in m.shards["train"])
    assert m.split_boundaries.val_start == int(np.datetime64("2021-02-01", "ns").astype(np.int64))
    train = read_split(tmp_path / "out", "train")
    # min-max over training rows: every scaled training input lies in [0, 1]
    assert train["x"].min() >= -1e-6 and train["x"].max() <= 1 + 1e-6
    assert train["t"].max() < m.split_boundaries.val_start


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.bz2", ".csv.zst"])
def test_compressed_csv_gives_the_shards_of_the_plain_csv(tmp_path, suffix):
    """Compressed CSVs (decompressed by pyarrow: Beam's reader looks closed to pyarrow) hold
    the same rows: the shards are byte for byte those of the plain file."""
    df = multi_series()
    (tmp_path / "in").mkdir()
    plain, packed = tmp_path / "in" / "a.csv", tmp_path / "in" / f"b{suffix}"
    df.to_csv(plain, index=False)
    df.to_csv(packed, index=False, compression={".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}[suffix[4:]])
    for name, path in (("plain", plain), ("packed", packed)):
        run(job_args(str(path), tmp_path / name))
    shards = [[s.sha256 for s in load_manifest(tmp_path / name).shards["train"]] for name in ("plain", "packed")]
    assert shards[0] == shards[1] and len(shards[0]) > 1


def test_robust_scaling_uses_train_quantiles(tmp_path):
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 2, "parquet")
    run(job_args(pattern, tmp_path / "out", "--scaler", "robust"))
    m = load_manifest(tmp_path / "out")
    t_ns = df["ts"].astype("datetime64[ns]").astype(np.int64)
    train = df[t_ns < m.split_boundaries.val_start]
    for c in m.columns:
        q25, q50, q75 = np.quantile(train[c.name], [0.25, 0.5, 0.75])
        assert c.center == pytest.approx(q50, rel=1e-9) and c.scale == pytest.approx(q75 - q25, rel=1e-9)


def test_existing_output_is_refused_then_replaced_with_overwrite(tmp_path):
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 2, "parquet")
    run(job_args(pattern, tmp_path / "out"))
    before = load_manifest(tmp_path / "out")
    from preprocessing.errors import OutputError

    with pytest.raises(OutputError, match="already holds a dataset.*--overwrite"):
        run(job_args(pattern, tmp_path / "out", "--train-shards", "4"))
    assert load_manifest(tmp_path / "out") == before  # untouched
    run(job_args(pattern, tmp_path / "out", "--train-shards", "4", "--overwrite"))
    after = load_manifest(tmp_path / "out")
    assert len(after.shards["train"]) == 4
    names = sorted(os.listdir(tmp_path / "out"))
    listed = sorted([s.file for sp in after.shards.values() for s in sp] + ["metadata.json"])
    assert names == listed  # old shards removed, nothing else left


def test_manifest_sizes_and_hashes_match_files(tmp_path):
    import hashlib

    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 2, "parquet")
    run(job_args(pattern, tmp_path / "out"))
    m = load_manifest(tmp_path / "out")
    raw = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert raw["format_version"] == 3 and raw["encoding"]["name"] == "window_block_v1"
    for split in m.shards.values():
        for s in split:
            data = (tmp_path / "out" / s.file).read_bytes()
            assert len(data) == s.bytes and hashlib.sha256(data).hexdigest() == s.sha256


def test_default_reader_mixes_series_and_time_within_an_epoch(tmp_path):
    """The first tenth of an epoch, read with the trainer's defaults, covers all series and times."""
    from training.data import read_windows

    rng = np.random.default_rng(11)
    df = pd.concat([make_series(rng, f"s{i}", "2021-01-01", 1500) for i in range(6)], ignore_index=True)
    pattern = write_files(df, tmp_path / "in", 3, "parquet")
    run(job_args(pattern, tmp_path / "out", "--chunk-rows", "300"))
    m = load_manifest(tmp_path / "out")
    ds = read_windows(m, str(tmp_path / "out"), "train", shuffle=True, seed=1, with_ids=True)
    first = [w for _, w in zip(range(m.windows("train") // 10), ds.as_numpy_iterator(), strict=False)]
    sids = {w["sid"] for w in first}
    assert len(sids) == 6
    t = np.array([w["t"] for w in first])
    lo, hi = m.time_range[0], m.split_boundaries.val_start
    deciles = np.floor((t - lo) / (hi - lo) * 10).astype(int)
    counts = np.bincount(deciles, minlength=10)[:10]
    assert counts.min() > 0.4 * counts.mean(), counts  # every tenth of the time range well represented


def test_full_shuffle_writes_the_same_windows(tmp_path):
    """--full-shuffle (a Beam shuffle of window blocks, for Dataflow) changes placement, not content."""
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 2, "parquet")
    run(job_args(pattern, tmp_path / "out", "--full-shuffle", "--chunk-rows", "300"))
    m = check_against_reference(df, tmp_path / "out")
    assert len(m.shards["train"]) == 16  # every shard exists, even one that got no block


def test_the_default_runner_is_the_tested_engine_not_prism(tmp_path, caplog):
    """Without --runner the job runs on Beam's FnApiRunner (what every test here runs on),
    never first trying to download and start the Prism runner."""
    df = make_series(np.random.default_rng(0), "a", "2021-01-01", 300)
    df.to_parquet(tmp_path / "a.parquet", index=False)
    caplog.set_level("INFO")
    run(job_args(str(tmp_path / "a.parquet"), tmp_path / "out", series=False))
    messages = [r.getMessage() for r in caplog.records]
    assert any("runner FnApiRunner" in m for m in messages)
    assert not any("Prism" in m for m in messages), [m for m in messages if "Prism" in m]


def numpy_windows(df, *, val_start, test_start, look_back, horizon, cols=("x", "y"), target="y"):
    """Independent numpy reference for gap-free series: global train-row scaling, every window
    inside one series and one split (sliding_window_view over the rows sorted by series, time)."""
    from numpy.lib.stride_tricks import sliding_window_view

    from contract.records import series_id

    df = df.sort_values(["series", "ts"], kind="stable")
    t = df["ts"].astype("datetime64[ns]").astype(np.int64).to_numpy()
    v = df[list(cols)].to_numpy(np.float64)
    train = v[t < val_start]
    scaled = ((v - train.mean(axis=0)) / train.std(axis=0)).astype(np.float32)
    codes, names = pd.factorize(df["series"])
    split = np.searchsorted([val_start, test_start], t, side="right")
    span = look_back + horizon
    starts = np.arange(len(t) - span + 1)
    last, tgt = starts + look_back - 1, starts + span - 1
    ok = (codes[starts] == codes[tgt]) & (split[starts] == split[tgt])
    sids = np.array([series_id(str(n)) for n in names], np.int64)[codes]
    windows = sliding_window_view(scaled, look_back, axis=0).transpose(0, 2, 1)
    out = {}
    for i, name in enumerate(("train", "val", "test")):
        s = starts[ok & (split[starts] == i)]
        out[name] = sort_windows({"x": windows[s], "y": scaled[tgt[s - starts[0]]][:, [cols.index(target)]],
                                  "t": t[last[s]], "sid": sids[s]})
    return out


def test_ten_thousand_tiny_series_match_numpy_and_pack_into_few_units(tmp_path):
    """12,000 series of 12 rows, staggered in time (so they cross split and chunk borders): the
    windows equal an independent numpy reference, units follow rows (not series), and records
    hold full blocks across units."""
    rng = np.random.default_rng(7)
    n_series, per = 12_000, 12
    start = rng.integers(0, 400, size=n_series)
    k = np.tile(np.arange(per), n_series) + np.repeat(start, per)
    df = pd.DataFrame({
        "ts": np.datetime64("2022-01-01", "ns") + k * np.timedelta64(1, "h"),
        "series": np.repeat([f"m{i:05d}" for i in range(n_series)], per),
        "x": np.sin(k / 7) + rng.normal(size=len(k)) * 0.1,
        "y": np.cos(k / 5) + np.repeat(rng.normal(size=n_series), per),
    })
    pattern = write_files(df, tmp_path / "in", 3, "parquet")
    run(["--input", pattern, "--output", str(tmp_path / "out"), "--time-column", "ts", "--series-column", "series",
         "--features", "x,y", "--targets", "y", "--look-back", "3", "--horizon", "1", "--chunk-rows", "20000",
         "--train-shards", "4", "--eval-shards", "2"])
    m = load_manifest(tmp_path / "out")
    b = m.split_boundaries
    ref = numpy_windows(df, val_start=b.val_start, test_start=b.test_start, look_back=3, horizon=1)
    for split in ("train", "val", "test"):
        got = sort_windows(read_split(tmp_path / "out", split))
        assert m.windows(split) == len(ref[split]["t"]) == len(got["t"]) > 1000, split
        np.testing.assert_array_equal(got["sid"], ref[split]["sid"])
        np.testing.assert_array_equal(got["t"], ref[split]["t"])
        np.testing.assert_allclose(got["x"], ref[split]["x"], atol=2e-6)
        np.testing.assert_allclose(got["y"].reshape(len(got["t"]), -1), ref[split]["y"], atol=2e-6)
        # full blocks across units: only each shard's last record may be short
        records = sum(1 for s in m.shards[split] for _ in iter_frames((tmp_path / "out" / s.file).read_bytes()))
        assert records <= sum(-(-s.windows // 256) for s in m.shards[split]), split
    # 144,000 rows at --chunk-rows 20,000: units follow the rows (a unit per series would be 12,000+)
    assert 7 <= m.counts.units <= 30, m.counts.units
    assert m.counts.rows_read == len(df)
