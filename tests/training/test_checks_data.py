"""Data checks of the doctor: each passes on a healthy dataset and fails on a broken one."""

from tests.training.conftest import load_manifest, sample_windows
from training import checks_data


def test_scaling(healthy, offsets):
    _, m, s = healthy
    assert checks_data.check_scaling(m, s).status == "PASS"
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
