"""`--look-back auto` (the default): a season of the time step and a row, read from the first rows."""

import numpy as np
import pandas as pd
import pytest

from contract.seasons import DEFAULT_LOOK_BACK, auto_look_back, reaching_look_back, season_length
from preprocessing.cli import run
from preprocessing.errors import SpecError
from tests.helpers import (
    FEATURES,
    TARGETS,
    load_manifest,
    make_series,
    read_split,
    reference_windows,
    sort_windows,
)

HOUR_NS = 3_600_000_000_000


def test_auto_look_back_is_a_season_and_a_row_where_it_fits():
    assert auto_look_back(24) == (25, "a season of 24 rows and a row")
    assert auto_look_back(7) == (8, "a season of 7 rows and a row")
    assert auto_look_back(288)[0] == reaching_look_back(288) == 289  # 5-minute rows: one day and a row
    look_back, why = auto_look_back(1440)  # minute rows: a day does not fit a window
    assert look_back == DEFAULT_LOOK_BACK and "aggregate" in why
    assert auto_look_back(None) == (DEFAULT_LOOK_BACK, "the time step names no season")
    assert season_length("timestamp", HOUR_NS) == 24 and season_length("integer", 1) is None


def _args(path, out, *extra):
    return ["--input", str(path), "--output", str(out), "--time-column", "ts", "--series-column", "series",
            "--features", ",".join(FEATURES), "--targets", ",".join(TARGETS), *extra]


@pytest.mark.slow
def test_hourly_rows_get_25_and_the_windows_of_25(tmp_path):
    rng = np.random.default_rng(3)
    df = pd.concat([make_series(rng, "a", "2021-03-01", 400), make_series(rng, "b", "2021-03-02", 300)],
                   ignore_index=True)
    path = tmp_path / "in.parquet"
    df.sample(frac=1, random_state=0).to_parquet(path, index=False)  # shuffled rows: the step is found per series
    run(_args(path, tmp_path / "out"))
    m = load_manifest(tmp_path / "out")
    assert m.window.look_back == 25
    assert m.options["look_back_source"] == "auto: a season of 24 rows and a row (time step 1h in the first rows)"
    ref, _, _ = reference_windows(df, val_start=m.split_boundaries.val_start, test_start=m.split_boundaries.test_start,
                                  look_back=25, horizon=1, max_gap=m.max_gap)
    got = sort_windows(read_split(tmp_path / "out", "train"))
    np.testing.assert_array_equal(got["t"], ref["train"]["t"])
    np.testing.assert_allclose(got["x"], ref["train"]["x"], atol=2e-6)


@pytest.mark.slow
def test_daily_integer_and_given_look_backs(tmp_path):
    rng = np.random.default_rng(4)
    daily = make_series(rng, "a", "2020-01-01", 200, freq="D")
    daily.to_csv(tmp_path / "daily.csv", index=False)
    run(_args(tmp_path / "daily.csv", tmp_path / "daily"))
    assert load_manifest(tmp_path / "daily").window.look_back == 8
    ints = daily.assign(ts=np.arange(len(daily)) * 3)  # an integer time: no season to read
    ints.to_parquet(tmp_path / "int.parquet", index=False)
    run(_args(tmp_path / "int.parquet", tmp_path / "int"))
    m = load_manifest(tmp_path / "int")
    assert m.window.look_back == 24 and m.options["look_back_source"] == "auto: the time step names no season"
    (tmp_path / "spec.yaml").write_text("look-back: auto\n")
    run(_args(tmp_path / "daily.csv", tmp_path / "spec", "--spec", str(tmp_path / "spec.yaml")))
    assert load_manifest(tmp_path / "spec").window.look_back == 8
    run(_args(tmp_path / "daily.csv", tmp_path / "given", "--look-back", "9"))
    m = load_manifest(tmp_path / "given")
    assert m.window.look_back == 9 and m.options["look_back_source"] == "given"


def test_a_bad_look_back_is_refused(capsys):
    for value, words in (("0", "expected >= 1 rows or auto, got 0"), ("often", "expected an integer or auto")):
        with pytest.raises(SystemExit) as e:
            run(["--input", "x.csv", "--output", "o", "--time-column", "ts", "--features", "a", "--targets", "a",
                 "--look-back", value])
        assert e.value.code == 2 and words in capsys.readouterr().err
    with pytest.raises(SpecError, match="not resolved"):
        from preprocessing.options import JobConfig

        JobConfig(input=("x",), output="o", time_column="ts", features=("a",), targets=("a",)).window  # noqa: B018
