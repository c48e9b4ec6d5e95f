"""seqscale-predict's forecast mode on a real export, against the raw rows and the export called
directly (load_predictor on numpy windows cut by hand)."""

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import training  # noqa: F401
from prediction.cli import run as predict
from preprocessing.errors import InputError
from tests.training.conftest import build_dataset, config

L = 16


def make_export(directory, extra=(), model_flags=()):
    """A dataset of the sines table and an (untrained: any predictor will do) model's export,
    written as the trainer writes it."""
    from evaluation import report as er
    from training.data import load_manifest
    from training.evaluate import evaluation_plan
    from training.export import export, load_series_scaling
    from training.model import build_model

    data = build_dataset(directory, extra=extra)
    m = load_manifest(str(data))
    series = load_series_scaling(m, str(data))
    model = build_model(m, config(data, *model_flags).model, seed=0)
    export(model, m, str(directory / "export"), series=series,
           evaluation=er.to_dict(evaluation_plan(m, str(data), series)))
    return directory / "export", pd.read_parquet(directory / "raw.parquet")


@pytest.fixture(scope="module")
def per_series(tmp_path_factory):
    return make_export(tmp_path_factory.mktemp("pred_series"), ("--scale-by", "series"))


@pytest.fixture(scope="module")
def global_export(tmp_path_factory):
    return make_export(tmp_path_factory.mktemp("pred_global"))


def forecasts(out) -> pd.DataFrame:
    result = json.loads((out / "predictions.json").read_text())
    files = result["files"]["forecasts"]
    assert sorted(p.name for p in out.glob("forecasts-*.parquet")) == sorted(files)
    return pd.concat([pq.read_table(out / f).to_pandas() for f in files]).sort_values("series").reset_index(drop=True)


def reference(export_dir, raw: pd.DataFrame, per_series: bool) -> pd.DataFrame:
    """The last L rows of each series, by hand, through the export's signature."""
    from training.export import load_predictor

    rows = []
    keys, xs = [], []
    for sid, g in raw.sort_values("t").groupby("sid"):
        keys.append(sid)
        xs.append(g[["x1", "x2", "y"]].to_numpy(np.float32)[-L:])
        rows.append({"series": sid, "origin_time": int(g["t"].iloc[-1]), "target_time": int(g["t"].iloc[-1]) + 1})
    p = load_predictor(str(export_dir))(np.stack(xs), series=keys if per_series else None)
    out = pd.DataFrame(rows)
    out["forecast"] = p[:, 0]
    return out


@pytest.mark.parametrize("which", ["per_series", "global_export"])
def test_forecast_is_the_export_on_each_series_last_window(which, request, tmp_path):
    export_dir, raw = request.getfixturevalue(which)
    result = predict(["--export", str(export_dir), "--input", str(export_dir.parent / "raw.parquet"),
                      "--output", str(tmp_path / "out")])
    got = forecasts(tmp_path / "out")
    want = reference(export_dir, raw, which == "per_series")
    assert list(got["series"]) == list(want["series"]) == ["s0", "s1", "s2"]
    assert (got["origin_time"].to_numpy() == want["origin_time"].to_numpy()).all()
    assert (got["target_time"].to_numpy() == want["target_time"].to_numpy()).all()
    assert (got["step"] == 1).all() and (got["target"] == "y").all()
    np.testing.assert_allclose(got["forecast"], want["forecast"], rtol=1e-5)
    assert result["counts"]["series_forecast"] == 3 and result["counts"]["rows_read"] == len(raw)
    assert result["skipped"] == {}


@pytest.mark.parametrize("mode", [[], ["--split", "test"]], ids=["forecast", "score"])
def test_files_and_row_order_do_not_matter(per_series, tmp_path, mode):
    export_dir, raw = per_series
    shuffled = raw.sample(frac=1.0, random_state=3).reset_index(drop=True)
    for i, part in enumerate(shuffled.iloc[k::3] for k in range(3)):
        part.to_parquet(tmp_path / f"part{i}.parquet", index=False)
    shuffled.iloc[:0].to_parquet(tmp_path / "part_empty.parquet", index=False)
    a = predict(["--export", str(export_dir), "--input", str(tmp_path / "part*.parquet"), "--output",
                 str(tmp_path / "a"), "--direct_num_workers", "2", "--batch-size", "2", *mode])
    b = predict(["--export", str(export_dir), "--input", str(export_dir.parent / "raw.parquet"), "--output",
                 str(tmp_path / "b"), *mode])
    key = ["series", "origin_time"]
    pd.testing.assert_frame_equal(forecasts(tmp_path / "a").sort_values(key).reset_index(drop=True),
                                  forecasts(tmp_path / "b").sort_values(key).reset_index(drop=True))
    if mode:
        assert a["report"]["model"]["original"]["rmse"] == pytest.approx(b["report"]["model"]["original"]["rmse"],
                                                                         rel=1e-9)


def test_series_without_a_window_are_skipped_with_their_reason(per_series, tmp_path):
    export_dir, raw = per_series
    short = raw[raw["sid"] == "s0"].tail(L - 1).assign(sid="short")  # an unknown series, too
    s1 = raw[raw["sid"] == "s1"]
    gap = s1.drop(s1.index[-5])  # a gap inside the last window
    unknown = raw[raw["sid"] == "s2"].assign(sid="new")
    data = pd.concat([raw[raw["sid"] != "s1"], gap, short, unknown])
    data.to_parquet(tmp_path / "in.parquet", index=False)
    result = predict(["--export", str(export_dir), "--input", str(tmp_path / "in.parquet"),
                      "--output", str(tmp_path / "out")])
    assert result["skipped"] == {"gap_in_window": 1, "unknown_series": 2}
    assert result["counts"]["series_forecast"] == 2 and result["counts"]["series_skipped"] == 3
    skipped = pq.read_table(tmp_path / "out" / result["files"]["skipped"][0]).to_pandas().sort_values("series")
    assert dict(zip(skipped["series"], skipped["reason"], strict=True)) == {
        "new": "unknown_series", "short": "unknown_series", "s1": "gap_in_window"}
    assert list(forecasts(tmp_path / "out")["series"]) == ["s0", "s2"]


def test_a_too_short_series_is_skipped_with_global_scaling(global_export, tmp_path):
    export_dir, raw = global_export
    data = pd.concat([raw, raw[raw["sid"] == "s0"].tail(L - 1).assign(sid="short")])
    data.to_parquet(tmp_path / "in.parquet", index=False)
    result = predict(["--export", str(export_dir), "--input", str(tmp_path / "in.parquet"),
                      "--output", str(tmp_path / "out")])
    assert result["skipped"] == {"too_short": 1} and result["counts"]["series_forecast"] == 3


def test_bad_inputs_name_the_file_and_leave_nothing(per_series, tmp_path):
    export_dir, raw = per_series
    raw.drop(columns=["x2"]).to_parquet(tmp_path / "nocol.parquet", index=False)
    with pytest.raises(InputError, match=r"nocol.parquet: column 'x2' is missing"):
        predict(["--export", str(export_dir), "--input", str(tmp_path / "nocol.parquet"),
                 "--output", str(tmp_path / "o1")])
    assert not (tmp_path / "o1").exists()
    dup = pd.concat([raw, raw.tail(1)])
    dup.to_parquet(tmp_path / "dup.parquet", index=False)
    with pytest.raises(InputError, match=r"series 's2' has two rows at time 1499: .*dup.parquet"):
        predict(["--export", str(export_dir), "--input", str(tmp_path / "dup.parquet"),
                 "--output", str(tmp_path / "o2")])
    assert not (tmp_path / "o2").exists()
    with pytest.raises(InputError, match="has no seqscale_manifest.json"):
        predict(["--export", str(tmp_path), "--input", str(tmp_path / "dup.parquet"), "--output", str(tmp_path / "o3")])


def test_main_exits_2_with_the_message(per_series, tmp_path, capsys):
    from prediction.__main__ import main

    export_dir, _ = per_series
    assert main(["--export", str(export_dir), "--input", str(tmp_path / "none*.csv"), "--output",
                 str(tmp_path / "o")]) == 2
    assert "matches no file" in capsys.readouterr().err
    assert main(["--export", str(export_dir), "--inptu", "x", "--output", str(tmp_path / "o")]) == 2
    assert "--input" in capsys.readouterr().err
