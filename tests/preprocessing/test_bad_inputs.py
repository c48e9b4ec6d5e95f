"""Each bad input gives a clear error naming file/row/column and the fix, or a counted drop.
None of them leaves a metadata.json (or anything else) behind."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from preprocessing.cli import run
from preprocessing.errors import SeqscaleError
from tests.helpers import (
    job_args,
    load_manifest,
    make_series,
    read_split,
    reference_windows,
    sort_windows,
)

pytestmark = pytest.mark.slow


def frame(n=200, name="a", seed=0):
    return make_series(np.random.default_rng(seed), name, "2021-03-01", n)


def write(df, path, fmt="csv"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path, index=False)
    return path


def expect_error(tmp_path, inputs, pattern, *extra, series=True):
    out = tmp_path / "out"
    with pytest.raises(SeqscaleError, match=pattern) as info:
        run(job_args(inputs, out, *extra, series=series))
    assert str(info.value).count("seqscale error:") == 1, str(info.value)  # one marker, never doubled
    assert not out.exists(), os.listdir(out)  # nothing is left that was not there before


def test_missing_column_names_file_and_columns(tmp_path):
    p = write(frame().drop(columns=["x2"]), str(tmp_path / "in" / "a.csv"))
    expect_error(tmp_path, p, r"a\.csv: column 'x2' is missing \(the file has .*\); fix the spec")


def test_non_numeric_value_names_row_and_column(tmp_path):
    df = frame().astype({"x1": object})
    df.loc[17, "x1"] = "abc"
    p = write(df, str(tmp_path / "in" / "a.csv"))
    expect_error(tmp_path, p, r"a\.csv row 18 \(line 19\): column 'x1' has non-numeric value 'abc'")


def test_non_numeric_value_deep_in_a_compressed_csv_names_its_row(tmp_path):
    """pyarrow parses numbers itself and its error names no row: the file (here gzip, which is
    read again from its start) is re-read as strings to name the row. '1_000', which Python's
    float() would take, must not hide the real row; a number with spaces around it is a number."""
    df = frame(n=3000).astype({"x1": object, "x2": object})
    df.loc[5, "x2"] = " 1.5 "
    df.loc[2499, "x1"] = "1_000"
    p = str(tmp_path / "in" / "a.csv.gz")
    os.makedirs(os.path.dirname(p))
    df.to_csv(p, index=False, compression="gzip")
    expect_error(tmp_path, p, r"a\.csv\.gz row 2500 \(line 2501\): column 'x1' has non-numeric value '1_000'")


def test_nan_fails_by_default_naming_row_and_policy(tmp_path):
    df = frame()
    df.loc[5, "y"] = np.nan
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    expect_error(tmp_path, p, r"a\.parquet row 6: column 'y' is missing \(NaN\).*--nan-policy drop")


def test_inf_fails_by_default(tmp_path):
    df = frame()
    df.loc[9, "x2"] = np.inf
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    expect_error(tmp_path, p, r"row 10: column 'x2' is inf")


def test_nan_drop_policy_counts_rows(tmp_path):
    df = frame()
    df.loc[[5, 50, 51], "y"] = np.nan
    df.loc[80, "x1"] = -np.inf
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    run(job_args(p, tmp_path / "out", "--nan-policy", "drop"))
    m = load_manifest(tmp_path / "out")
    assert m.counts.rows_dropped["nan_or_inf"] == 4
    assert m.counts.rows_read == 200


def test_forward_fill_across_chunk_borders_equals_pandas(tmp_path):
    """NaN runs placed at chunk borders are filled from the previous chunk (halo before)."""
    df = frame(n=600)
    for r in (99, 100, 101, 199, 200, 350):  # chunks of 100 rows start at 0, 100, 200 ...
        df.loc[r, "x1"] = np.nan
    df.loc[0, "x2"] = np.nan  # nothing before it: dropped
    df.loc[400:415, "y"] = np.nan  # 16 in a row, limit 10: 6 dropped
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    run(job_args(p, tmp_path / "out", "--nan-policy", "ffill", "--chunk-rows", "140", "--ffill-limit", "10"))
    m = load_manifest(tmp_path / "out")
    assert m.counts.rows_dropped["nan_unfillable"] == 1 + 6
    filled = df.copy()
    for c in ("x1", "x2", "y"):
        filled[c] = filled[c].ffill(limit=10)
    filled = filled.dropna()
    ref, _, _ = reference_windows(
        filled, val_start=m.split_boundaries.val_start, test_start=m.split_boundaries.test_start,
        look_back=12, horizon=2, max_gap=m.max_gap,
    )
    got = sort_windows(read_split(tmp_path / "out", "train"))
    np.testing.assert_array_equal(got["t"], ref["train"]["t"])
    np.testing.assert_allclose(got["x"], ref["train"]["x"], atol=2e-6)


def test_duplicate_timestamps_fail_naming_both_rows_or_keep_last(tmp_path):
    df = frame()
    dup = df.iloc[[30]].copy()
    dup["y"] = 123.0
    write(df, str(tmp_path / "in" / "a.csv"))
    write(dup, str(tmp_path / "in" / "b.csv"))
    pattern = str(tmp_path / "in" / "*.csv")
    expect_error(
        tmp_path, pattern,
        r"series 'a' has two rows at time 2021-03-02T06:00:00.*a\.csv row 31.*b\.csv row 1.*--duplicates keep-last",
    )
    run(job_args(pattern, tmp_path / "ok", "--duplicates", "keep-last"))
    m = load_manifest(tmp_path / "ok")
    assert m.counts.rows_dropped["duplicate_timestamp"] == 1
    # the later file's row was kept: its y value shows up in a target
    y_col = m.column("y")
    y = read_split(tmp_path / "ok", "train")["y"] * y_col.scale + y_col.mean
    assert np.isclose(y, 123.0, atol=1e-3).any()


def test_constant_feature_names_column_and_opt_out(tmp_path):
    df = frame()
    df["x2"] = 5.0
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    expect_error(tmp_path, p, r"column 'x2' of .*a\.parquet has zero spread on its 1\d\d training rows .* --unscaled x2")
    run(job_args(p, tmp_path / "ok", "--unscaled", "x2"))
    assert not load_manifest(tmp_path / "ok").column("x2").scaled


def test_a_constant_target_is_nothing_to_forecast_not_a_scaling_problem(tmp_path):
    """Suggesting --unscaled for a constant target led to the doctor suggesting to drop it: a circle."""
    df = frame()
    df["y"] = 2.5
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    out = tmp_path / "out"
    with pytest.raises(SeqscaleError) as info:
        run(job_args(p, out))
    msg = str(info.value)
    assert "target 'y' of" in msg and "every one of its" in msg and "is 2.5, so there is nothing to forecast" in msg
    assert "--unscaled" not in msg and "--targets" in msg and not out.exists()

    # a user who opts it out of scaling anyway meets the same words in the doctor, not a scaling fix
    import training  # noqa: F401
    from training.doctor.checks_data import check_scaling

    run(job_args(p, tmp_path / "unscaled", "--unscaled", "y"))
    m = load_manifest(tmp_path / "unscaled")
    v = check_scaling(m, read_split(tmp_path / "unscaled", "train"))
    assert v.status == "FAIL" and "the target does not vary" in v.evidence and "nothing to forecast" in v.evidence
    assert "--unscaled" not in v.fix, v


def test_glob_matching_nothing(tmp_path):
    expect_error(tmp_path, str(tmp_path / "nothing" / "*.csv"), r"matches no file")


def test_header_only_files_are_counted_and_all_empty_is_an_error(tmp_path):
    write(frame().iloc[:0], str(tmp_path / "in" / "empty.csv"))
    expect_error(tmp_path, str(tmp_path / "in" / "*.csv"), r"input files \(.*empty\.csv\) hold no data rows")
    write(frame(), str(tmp_path / "in" / "full.csv"))
    run(job_args(str(tmp_path / "in" / "*.csv"), tmp_path / "ok"))
    assert load_manifest(tmp_path / "ok").counts.empty_files == 1


def test_series_too_short_everywhere_is_an_error_saying_why(tmp_path):
    p = write(frame(n=10), str(tmp_path / "in" / "a.csv"))
    expect_error(tmp_path, p, r"no training windows: .*shorter than look_back \+ horizon = 14")


def test_column_named_twice_and_time_as_feature(tmp_path):
    p = write(frame(), str(tmp_path / "in" / "a.csv"))
    with pytest.raises(SeqscaleError, match=r"column 'x1' is named twice in --features"):
        run(["--input", p, "--output", str(tmp_path / "o"), "--time-column", "ts", "--features", "x1,x1", "--targets", "y"])
    with pytest.raises(SeqscaleError, match=r"'ts' is the time column"):
        run(["--input", p, "--output", str(tmp_path / "o"), "--time-column", "ts", "--features", "ts", "--targets", "y"])


def test_truncated_parquet_names_file(tmp_path):
    p = write(frame(), str(tmp_path / "in" / "a.parquet"), "parquet")
    data = Path(p).read_bytes()
    Path(p).write_bytes(data[: len(data) // 2])
    expect_error(tmp_path, p, r"a\.parquet: not a readable Parquet file .*truncated or corrupt")


def test_mixed_time_types_across_files(tmp_path):
    a = frame()
    b = frame(name="b").assign(ts=lambda d: np.arange(len(d)))
    write(a, str(tmp_path / "in" / "a.parquet"), "parquet")
    write(b, str(tmp_path / "in" / "b.parquet"), "parquet")
    expect_error(tmp_path, str(tmp_path / "in" / "*.parquet"), r"time column has different types across files")


def test_bad_time_string_names_row_and_suggests_format(tmp_path):
    df = frame().astype({"ts": str})
    df.loc[3, "ts"] = "yesterday"
    p = write(df, str(tmp_path / "in" / "a.csv"))
    expect_error(tmp_path, p, r"a\.csv row 4 \(line 5\): time column 'ts' has 'yesterday'.*--time-format")


def test_bad_time_string_after_the_first_csv_block_names_its_row(tmp_path, monkeypatch):
    """pyarrow infers the time column's type from the first block and fails on a later one with
    no row named: the file is read again as strings, which names the row."""
    from preprocessing import readers

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 4096)
    df = frame(n=1000).astype({"ts": str})
    df.loc[800, "ts"] = "yesterday"
    p = write(df, str(tmp_path / "in" / "a.csv"))
    expect_error(tmp_path, p, r"a\.csv row 801 \(line 802\): time column 'ts' has 'yesterday'.*--time-format")


def test_time_format_for_non_iso_dates(tmp_path):
    df = frame()
    df["ts"] = df["ts"].dt.strftime("%d/%m/%Y %H:%M")
    p = write(df, str(tmp_path / "in" / "a.csv"))
    run(job_args(p, tmp_path / "out", "--time-format", "%d/%m/%Y %H:%M"))
    assert load_manifest(tmp_path / "out").time_kind == "timestamp"


def test_classification_labels_are_checked(tmp_path):
    df = frame()
    df["label"] = (df["y"] > 0).astype(int)
    df.loc[150, "label"] = 3
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    args = ["--input", p, "--output", str(tmp_path / "out"), "--time-column", "ts", "--features", "x1,x2",
            "--targets", "label", "--task", "binary", "--look-back", "5"]
    with pytest.raises(SeqscaleError, match=r"target 'label' is 3, but --task binary needs class ids 0..1"):
        run(args)


def test_cli_prints_the_message_and_exits_2(tmp_path):
    df = frame()
    df.loc[5, "y"] = np.nan
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    proc = subprocess.run(
        [sys.executable, "-m", "preprocessing", *job_args(p, tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("seqscale-preprocess: error: ") and "column 'y' is missing (NaN)" in last
    # one clear line: no traceback, no doubled marker, only seqscale's own progress lines besides it
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and "seqscale error:" not in proc.stderr
    assert all(" INFO preprocessing." in line for line in lines[:-1]), lines
    debug = subprocess.run([sys.executable, "-m", "preprocessing", *job_args(p, tmp_path / "out"), "--log-level",
                            "debug"], capture_output=True, text=True, timeout=300)
    assert debug.returncode == 2 and "Traceback" in debug.stderr  # the full story on request


def test_a_clean_run_logs_progress_and_no_beam_noise(tmp_path):
    p = write(frame(), str(tmp_path / "in" / "a.parquet"), "parquet")
    proc = subprocess.run([sys.executable, "-m", "preprocessing", *job_args(p, tmp_path / "out")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stderr
    assert "Converting string literal type hint" not in log and "Prism" not in log
    assert "seqscale: read " in log and "seqscale: wrote train-00000-of-00016.tfrecord" in log
    assert " rows read, dropped none, " in log
    assert all(" seqscale" in line or "preprocessing." in line for line in log.strip().splitlines()), log


def test_spec_file_yaml_with_flags_overriding(tmp_path):
    p = write(frame(), str(tmp_path / "in" / "a.csv"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        f"input: [{p}]\noutput: {tmp_path / 'out'}\ntime-column: ts\nseries_column: series\n"
        "features: [x1, x2, y]\ntargets: y\nlook_back: 7\nhorizon: 3\n"
    )
    run(["--spec", str(spec), "--horizon", "2"])
    m = load_manifest(tmp_path / "out")
    assert (m.window.look_back, m.window.horizon) == (7, 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("lookback: 3\n")
    with pytest.raises(SeqscaleError, match="unknown option.*lookback"):
        run(["--spec", str(bad)])


def test_unsorted_rows_give_the_same_dataset_as_sorted(tmp_path):
    df = pd.concat([frame(name="a"), frame(name="b", seed=1)])
    write(df, str(tmp_path / "s" / "a.parquet"), "parquet")
    write(df.sample(frac=1, random_state=0), str(tmp_path / "u" / "a.parquet"), "parquet")
    run(job_args(str(tmp_path / "s" / "a.parquet"), tmp_path / "o1"))
    run(job_args(str(tmp_path / "u" / "a.parquet"), tmp_path / "o2"))
    a, b = sort_windows(read_split(tmp_path / "o1", "train")), sort_windows(read_split(tmp_path / "o2", "train"))
    np.testing.assert_array_equal(a["x"], b["x"])


def test_missing_target_column(tmp_path):
    p = write(frame().drop(columns=["y"]), str(tmp_path / "in" / "a.parquet"), "parquet")
    expect_error(tmp_path, p, r"a\.parquet: column 'y' is missing")


def test_values_overflowing_float64_when_squared(tmp_path):
    df = frame()
    df.loc[3, "x2"] = 1e300
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    expect_error(tmp_path, p, r"a\.parquet row 4: column 'x2' is 1e\+300, a training value too large to scale")


def test_non_ascii_and_path_like_column_names_are_just_names(tmp_path):
    df = frame().rename(columns={"x1": "température (°C)", "x2": "../x"})
    p = write(df, str(tmp_path / "in" / "a.csv"))
    out = tmp_path / "out"
    run(["--input", p, "--output", str(out), "--time-column", "ts", "--series-column", "series",
         "--features", "température (°C),../x,y", "--targets", "y", "--look-back", "8"])
    m = load_manifest(out)
    assert m.features == ("température (°C)", "../x", "y")
    # nothing was written outside the output directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
    assert not (tmp_path / "x").exists() and all("/" not in s.file for sp in m.shards.values() for s in sp)


def test_a_csv_with_a_different_column_order(tmp_path):
    df = frame(n=300)
    write(df.iloc[:150], str(tmp_path / "in" / "a.csv"))
    write(df.iloc[150:][["y", "x2", "series", "ts", "x1"]], str(tmp_path / "in" / "b.csv"))
    run(job_args(str(tmp_path / "in" / "*.csv"), tmp_path / "out"))
    run(job_args(write(df, str(tmp_path / "one" / "all.csv")), tmp_path / "ref"))
    a, b = sort_windows(read_split(tmp_path / "out", "train")), sort_windows(read_split(tmp_path / "ref", "train"))
    np.testing.assert_array_equal(a["x"], b["x"])


def test_mixed_numeric_dtypes_across_files(tmp_path):
    df = frame(n=300)
    first = df.iloc[:150].copy()
    first["x2"] = first["x2"].round().astype("int64")  # integers in one file, floats in the other
    write(first, str(tmp_path / "in" / "a.parquet"), "parquet")
    write(df.iloc[150:], str(tmp_path / "in" / "b.parquet"), "parquet")
    run(job_args(str(tmp_path / "in" / "*.parquet"), tmp_path / "out"))
    assert load_manifest(tmp_path / "out").counts.rows_read == 300


def test_a_failed_run_keeps_an_output_directory_the_user_made(tmp_path):
    p = write(frame().drop(columns=["x2"]), str(tmp_path / "in" / "a.csv"))
    (tmp_path / "out").mkdir()
    with pytest.raises(SeqscaleError, match="column 'x2' is missing"):
        run(job_args(p, tmp_path / "out"))
    assert (tmp_path / "out").is_dir() and os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize("value,row,col", [(1e300, 180, "x1"), (1e39, 195, "y")])
def test_values_that_overflow_float32_outside_training_name_the_row(tmp_path, value, row, col):
    """A value beyond float32 once scaled, in a validation or test row (the training check
    does not see it), is an error naming file, row and column, never inf in a shard."""
    df = frame()
    df.loc[row, col] = value
    p = write(df, str(tmp_path / "in" / "a.csv"))
    expect_error(tmp_path, p, rf"a\.csv row {row + 1} \(line {row + 2}\): column '{col}' is {re.escape(f'{value:g}')}, which is beyond "
                              r"float32 .*--nan-policy drop")


def test_overflow_rows_are_dropped_and_counted_under_the_drop_policy(tmp_path):
    df = frame()
    df.loc[190, "x2"] = 1e300
    p = write(df, str(tmp_path / "in" / "a.csv"))
    run(job_args(p, tmp_path / "out", "--nan-policy", "drop"))
    m = load_manifest(tmp_path / "out")
    assert m.counts.rows_dropped == {"not_finite_after_scaling": 1}
    for split in ("train", "val", "test"):
        w = read_split(tmp_path / "out", split)
        assert np.isfinite(w["x"]).all() and np.isfinite(w["y"]).all()
    t190 = int(df.loc[190, "ts"].value)
    assert t190 not in read_split(tmp_path / "out", "test")["t"]  # the window ending on it is gone too


def test_rows_lost_to_short_segments_are_reported_with_the_max_gap_that_keeps_them(tmp_path, caplog):
    """Irregular data: 300 regular hours, then a 3-hour gap after every 10 rows. With look-back
    24 most rows give no window; the log says so and names the --max-gap that keeps them."""
    df = frame(n=1000)
    k = np.arange(1000)
    gappy = (k >= 300) & (k % 10 == 0)
    df["ts"] = df["ts"] + pd.to_timedelta(np.cumsum(gappy) * 2, unit="h")  # each gap: 3 hours instead of 1
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    caplog.set_level("INFO")
    run(job_args(p, tmp_path / "out", "--look-back", "24", "--horizon", "1"))
    m = load_manifest(tmp_path / "out")
    assert m.counts.rows_in_short_segments >= 690 and m.counts.short_segment_gap_steps == {"4": m.counts.rows_in_short_segments}
    warning = [r.message for r in caplog.records if r.levelname == "WARNING" and "give no window" in r.message]
    assert warning and "--max-gap 4h would keep 100% of them" in warning[0] and "--max-gap 90min" in warning[0]
    run(job_args(p, tmp_path / "out2", "--look-back", "24", "--horizon", "1", "--max-gap", "4h"))
    assert load_manifest(tmp_path / "out2").counts.rows_in_short_segments == 0


def test_mistyped_flags_are_an_error_naming_the_closest_flag(tmp_path):
    p = write(frame(), str(tmp_path / "in" / "a.csv"))
    proc = subprocess.run([sys.executable, "-m", "preprocessing", *job_args(p, tmp_path / "out"), "--look_back", "48",
                           "--lookback", "48", "--nan_policy", "drop", "--direct_num_workers", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert ("unknown option(s) --look_back (did you mean --look-back?), --lookback (did you mean --look-back?), "
            "--nan_policy (did you mean --nan-policy?)") in proc.stderr
    assert "--direct_num_workers" not in proc.stderr.split("error:")[-1]  # Beam's own options are known
    assert not (tmp_path / "out").exists()


def test_help_lists_seqscale_and_beam_options():
    proc = subprocess.run([sys.executable, "-m", "preprocessing", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0
    assert "--look-back" in proc.stdout and "--runner" in proc.stdout and "--temp_location" in proc.stdout


def test_spec_file_values_are_checked_and_converted(tmp_path):
    p = write(frame(), str(tmp_path / "in" / "a.csv"))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"input: [{p}]\noutput: {tmp_path / 'out'}\ntime-column: ts\nseries-column: series\n"
                    "features: [x1, x2, y]\ntargets: y\ntrain-fraction: 7e-1\nval-fraction: 1.5e-1\nlook-back: '12'\n")
    run(["--spec", str(spec)])
    assert load_manifest(tmp_path / "out").window.look_back == 12
    for bad, message in (("train-fraction: seventy", "train_fraction: expected a number, got 'seventy'"),
                         ("look-back: 1.5", "look_back: expected an integer, got 1.5"),
                         ("scaler: zscore", "scaler: expected one of standard, minmax, robust, got 'zscore'")):
        spec.write_text(f"input: [{p}]\noutput: {tmp_path / 'out2'}\ntime-column: ts\nfeatures: [x1]\ntargets: y\n{bad}\n")
        with pytest.raises(SeqscaleError, match=re.escape(f"{spec}: {message}")):
            run(["--spec", str(spec)])


def test_a_duplicate_in_a_single_series_table_names_no_series(tmp_path):
    df = frame().drop(columns=["series"])
    write(pd.concat([df, df.iloc[[30]]]), str(tmp_path / "in" / "a.csv"))
    expect_error(tmp_path, str(tmp_path / "in" / "a.csv"),
                 r"^seqscale error: there are two rows at time 2021-03-02T06:00:00[.0]*: .*a\.csv row 31", series=False)


def test_float32_overflow_error_comes_without_numpy_warnings(tmp_path):
    import warnings

    df = frame()
    df.loc[180, "x1"] = 1e300  # validation range: scales beyond float32
    p = write(df, str(tmp_path / "in" / "a.parquet"), "parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        expect_error(tmp_path, p, r"a\.parquet row 181: column 'x1' is 1e\+300, which is beyond float32")


def test_an_error_ending_in_a_quoted_value_keeps_its_closing_quote(tmp_path):
    (tmp_path / "spec.json").write_text('{"look_back": "forty-eight"}')
    out = subprocess.run([sys.executable, "-m", "preprocessing", "--spec", str(tmp_path / "spec.json"), "--input",
                          "x.csv", "--output", str(tmp_path / "o"), "--time-column", "ts", "--features", "a",
                          "--targets", "a"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().endswith("got 'forty-eight'"), out.stderr


def test_user_message_unwraps_runner_quotes_only():
    from preprocessing.errors import user_message

    assert user_message(ValueError("seqscale error: x: got 'forty-eight'")) == "x: got 'forty-eight'"
    assert user_message(RuntimeError("'seqscale error: x: got 7'")) == "x: got 7"
    assert user_message(RuntimeError("\"seqscale error: x: got 'a'\" [while running 'Cut']")) == "x: got 'a'"
