"""Data checks of the doctor: each passes on a healthy dataset and fails on a broken one."""

import numpy as np

from tests.training.conftest import load_manifest, sample_windows
from training.doctor import checks_data


def test_scaling(healthy, offsets):
    _, m, s = healthy
    v = checks_data.check_scaling(m, s)  # y sits at 0, 10 and 20 in its three series, varying by ~1.5
    assert v.status == "WARN" and "--scale-by series" in v.fix
    assert "levels explain most of the variance of y (9" in v.evidence and "x1" not in v.evidence.split("|")[0]
    bad = load_manifest(str(offsets / "bad"))
    v = checks_data.check_scaling(bad, sample_windows(bad, str(offsets / "bad"), n=512, with_ids=True))
    assert v.status == "FAIL" and "unscaled columns with large values: x2, y" in v.evidence
    assert "dominates" in v.evidence


def test_windows_against_raw_rows(healthy, tmp_path):
    data, m, s = healthy
    raw = str(data.parent / "raw.parquet")
    v = checks_data.check_windows(m, s, [raw])
    assert v.status == "PASS" and "0 differ, 0 not found" in v.evidence
    import pandas as pd

    shifted = pd.read_parquet(raw)
    shifted["y"] = shifted.groupby("sid")["y"].shift(1).bfill()  # targets one step late: a wrong horizon
    shifted.to_parquet(tmp_path / "shifted.parquet", index=False)
    v = checks_data.check_windows(m, s, [str(tmp_path / "shifted.parquet")])
    assert v.status == "FAIL" and "do not equal the raw rows" in v.evidence
    assert checks_data.check_windows(m, s, None).status == "WARN"  # nothing to compare with


def test_non_finite_values_in_the_shards_are_named(healthy):
    _, m, s = healthy
    bad = dict(s, x=s["x"].copy())
    bad["x"][3, 5, 1] = np.nan
    bad["x"][7, 0, 1] = np.inf
    v = checks_data.check_scaling(m, bad)
    assert v.status == "FAIL" and v.evidence.startswith("2 of 1024 sampled windows hold NaN/inf values, in x2")
    assert "--nan-policy" in v.fix


def test_learnability_on_several_series_with_distant_levels_passes(healthy):
    """Series 10 units apart make a global R2 near 1 for any level-carrying column: not a leak."""
    _, m, s = healthy
    v = checks_data.check_learnability(m, s)
    assert v.status == "PASS" and "a healthy model's validation loss should beat" in v.evidence, v.evidence


def test_the_look_back_is_checked_against_the_targets_season(power, tmp_path):
    """Hourly household power repeats daily: a 25-hour window holds the hour one day before the
    last input (and so the change the target made a day earlier); a 12-hour window does not, and
    the doctor says which look-back would."""
    from preprocessing.cli import run as preprocess
    from tests.training.conftest import POWER_FEATURES

    raw = [str(power["raw"]["good"])]
    good = load_manifest(str(power["good"]))
    v = checks_data.check_learnability(good, sample_windows(good, str(power["good"]), n=1024, with_ids=True), raw=raw)
    assert v.status == "PASS" and "the look-back 25 reaches the target's season (24 rows" in v.evidence, v.evidence
    short = tmp_path / "short"
    preprocess(["--input", raw[0], "--output", str(short), "--time-column", "date_time", "--targets", "target",
                "--features", ",".join(POWER_FEATURES), "--look-back", "12", "--train-shards", "2", "--eval-shards", "2"])
    m = load_manifest(str(short))
    v = checks_data.check_learnability(m, sample_windows(m, str(short), n=1024, with_ids=True), raw=raw)
    assert v.status == "WARN" and "repeats every 24 rows" in v.evidence and "--look-back 25" in v.fix, v.evidence


def test_per_series_scaling_passes_and_matches_the_raw_rows(tmp_path_factory):
    """The same data with --scale-by series: no level warning, and the windows equal the raw rows
    scaled with each series' own statistics."""
    from tests.training.conftest import build_dataset
    from training.export import load_series_scaling

    data = build_dataset(tmp_path_factory.mktemp("per_series"), extra=("--scale-by", "series"))
    m = load_manifest(str(data))
    s = sample_windows(m, str(data), n=1024, with_ids=True)
    assert checks_data.check_scaling(m, s).status == "PASS"
    v = checks_data.check_windows(m, s, [str(data.parent / "raw.parquet")], series=load_series_scaling(m, str(data)))
    assert v.status == "PASS" and "64 sampled windows compared with the raw rows: 0 differ, 0 not found" in v.evidence
    v = checks_data.check_windows(m, s, [str(data.parent / "raw.parquet")])  # read as if scaled globally
    assert v.status == "FAIL"
