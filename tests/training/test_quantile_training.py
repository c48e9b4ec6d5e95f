"""Quantile training end to end on data whose conditional quantiles are known: AR(1) plus Gaussian
noise of known sigma. The trained 10/50/90% levels land near the true ones, the 80% interval covers
about 80% of the test targets, eval.json's interval numbers equal numpy on the same windows, and
the export returns the quantiles in original units, never crossing."""

import json

import numpy as np
import pandas as pd
import pytest

import training  # noqa: F401
from preprocessing.cli import run as preprocess
from tests.training.test_train import run_single, trainer

pytestmark = pytest.mark.slow
PHI, SIGMA, LEVEL, SCALE = 0.8, 0.5, 10.0, 4.0
Z90 = 1.2815515655446004  # the standard normal's 90% quantile


@pytest.fixture(scope="module")
def ar1(tmp_path_factory):
    d = tmp_path_factory.mktemp("ar1")
    rng = np.random.default_rng(0)
    n = 12_000
    z = np.zeros(n)
    for t in range(1, n):
        z[t] = PHI * z[t - 1] + SIGMA * rng.normal()
    pd.DataFrame({"t": np.arange(n), "y": LEVEL + SCALE * z}).to_parquet(d / "raw.parquet", index=False)
    preprocess(["--input", str(d / "raw.parquet"), "--output", str(d / "data"), "--time-column", "t", "--features",
                "y", "--targets", "y", "--look-back", "8", "--train-shards", "2", "--eval-shards", "2"])
    job = d / "job"
    run_single(trainer(d / "data", job, "--quantiles", "0.1,0.5,0.9", "--units", "16", "--epochs", "15",
                       "--seed", "0"), timeout=600)
    return d, job


def test_trained_quantiles_match_the_true_conditional_quantiles(ar1):
    import tensorflow as tf

    from training.data import load_manifest, read_windows
    from training.export import SIGNATURE

    d, job = ar1
    m = load_manifest(str(d / "data"))
    w = next(read_windows(m, str(d / "data"), "test", shuffle=False).batch(100_000).as_numpy_iterator())
    col = m.column("y")
    raw_x = w["x"] * col.scale + col.center
    out = tf.saved_model.load(str(job / "export")).signatures[SIGNATURE](x=tf.constant(raw_x, tf.float32))
    q = out["quantiles"].numpy()[:, 0, :]  # (windows, levels) in original units
    assert (np.diff(q, axis=-1) >= 0).all()
    np.testing.assert_allclose(out["predictions"].numpy()[:, 0], q[:, 1])  # the point forecast is the median
    y = w["y"][:, 0] * col.scale + col.center
    last = raw_x[:, -1, 0]
    center = LEVEL + PHI * (last - LEVEL)  # the true conditional median
    half = SCALE * SIGMA * Z90  # the true conditional 10%..90% half-width
    assert np.median(np.abs(q[:, 1] - center)) < 0.15 * half
    assert abs(np.median(q[:, 2] - q[:, 0]) / (2 * half) - 1) < 0.15
    coverage = float(((y >= q[:, 0]) & (y <= q[:, 2])).mean())
    assert 0.75 <= coverage <= 0.85, coverage
    report = json.loads((job / "eval.json").read_text())["quantiles"]
    assert report["levels"] == [0.1, 0.5, 0.9] and report["point_level"] == 0.5
    assert json.loads((job / "config.json").read_text())["model"]["point_level"] == 0.5  # says which level
    interval = report["intervals"][0]
    assert interval["nominal"] == 0.8 and interval["coverage"] == pytest.approx(coverage, abs=1e-6)
    assert interval["mean_width"] == pytest.approx(float((q[:, 2] - q[:, 0]).mean()), rel=1e-4)
    u = y[:, None] - q
    tau = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(report["pinball"], np.maximum(tau * u, (tau - 1) * u).mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(report["observed"], (y[:, None] <= q).mean(axis=0), atol=1e-6)
    # the naive benchmark of interval forecasts: persistence plus its own training errors' quantiles
    naive = report["baselines"]["persistence"]["intervals"][0]
    assert abs(naive["coverage"] - 0.8) < 0.05  # calibrated too on a stationary series
    assert interval["mean_width"] < naive["mean_width"]  # the model's interval is narrower
    below, above = np.maximum(q[:, 0] - y, 0), np.maximum(y - q[:, 2], 0)
    assert interval["interval_score"] == pytest.approx(float((q[:, 2] - q[:, 0] + 10 * (below + above)).mean()),
                                                       rel=1e-4)
    assert interval["interval_score"] < naive["interval_score"]
    assert (job / "reliability.png").exists()


def test_predict_writes_a_column_per_level_and_scores_them_as_eval_json(ar1, tmp_path):
    import pyarrow.parquet as pq

    from prediction.cli import run as predict

    d, job = ar1
    scored = predict(["--export", str(job / "export"), "--input", str(d / "raw.parquet"), "--output",
                      str(tmp_path / "s"), "--split", "test"])
    want = json.loads((job / "eval.json").read_text())["quantiles"]
    got = scored["report"]["quantiles"]
    assert got["levels"] == want["levels"] and got["point_level"] == 0.5
    np.testing.assert_allclose(got["pinball"], want["pinball"], rtol=1e-4)
    assert got["baselines"]["persistence"]["intervals"][0]["coverage"] == pytest.approx(
        want["baselines"]["persistence"]["intervals"][0]["coverage"], abs=1e-9)
    assert got["intervals"][0]["coverage"] == pytest.approx(want["intervals"][0]["coverage"], abs=1e-9)
    rows = pq.read_table(tmp_path / "s" / scored["files"]["forecasts"][0]).to_pandas()
    assert {"q0.1", "q0.5", "q0.9"} <= set(rows.columns)
    np.testing.assert_allclose(rows["forecast"], rows["q0.5"])
    assert (rows["q0.1"] <= rows["q0.5"]).all() and (rows["q0.5"] <= rows["q0.9"]).all()
    result = predict(["--export", str(job / "export"), "--input", str(d / "raw.parquet"), "--output",
                      str(tmp_path / "f")])
    one = pq.read_table(tmp_path / "f" / result["files"]["forecasts"][0]).to_pandas()
    assert len(one) == 1 and one["q0.1"].iloc[0] < one["forecast"].iloc[0] < one["q0.9"].iloc[0]


def test_calibrate_fixes_each_level_on_validation_and_reports_the_test_range(ar1, tmp_path):
    """One epoch of a tiny model leaves the levels off; --calibrate shifts them so each holds on the
    validation windows (the 10-90% interval covers at least 80%, by under 4 windows more), and
    eval.json reports test coverage before and after."""
    from training.data import load_manifest

    d, _ = ar1
    job = tmp_path / "cal"
    out = run_single(trainer(d / "data", job, "--quantiles", "0.1,0.5,0.9", "--units", "4", "--epochs", "1",
                             "--seed", "3", "--calibrate"), timeout=600)
    assert "quantiles calibrated on" in out
    assert "model                 interval 0.1-0.9: coverage" in out and "persistence           interval 0.1-0.9" in out
    cal = json.loads((job / "eval.json").read_text())["quantiles"]["calibration"]
    n = load_manifest(str(d / "data")).windows("val")
    assert cal["validation_windows"] == n and np.shape(cal["shifts"]) == (1, 1, 3)  # [target rows][targets][levels]
    after = cal["validation_after"][0]
    # the finite-sample split-conformal ranks: at least nominal, less than 4 windows over it
    assert after["nominal"] == 0.8 and 0.8 <= after["coverage"] <= 0.8 + 4 / n
    assert {"test_before", "test_after"} <= cal.keys()
    assert (job / "reliability.png").stat().st_size > 1000
    assert cal["test_after"][0]["coverage"] == json.loads((job / "eval.json").read_text())["quantiles"][
        "intervals"][0]["coverage"]


def test_members_calibrate_their_mean_not_each_member(ar1, tmp_path):
    """--members 2 --calibrate: the members export their own levels uncalibrated; the job's export is
    their mean with each level shifted by its validation residual quantile and sorted again, which
    holds on the validation windows (at least nominally, by under 4 windows more), reported in the
    job's eval.json."""
    import tensorflow as tf

    from training.data import load_manifest, read_windows
    from training.export import SIGNATURE

    d, _ = ar1
    job = tmp_path / "ens"
    out = run_single(trainer(d / "data", job, "--quantiles", "0.1,0.5,0.9", "--units", "4", "--epochs", "1",
                             "--seed", "3", "--members", "2", "--calibrate"), timeout=900)
    assert out.count("quantiles calibrated on") == 1  # the mean's, once
    for k in (0, 1):
        assert "calibration" not in json.loads((job / f"member-{k}" / "eval.json").read_text())["quantiles"]
        assert json.loads((job / f"member-{k}" / "config.json").read_text())["runtime"]["calibrate"] is False
    report = json.loads((job / "eval.json").read_text())
    cal = report["quantiles"]["calibration"]
    m = load_manifest(str(d / "data"))
    n = m.windows("val")
    assert cal["validation_windows"] == n and 0.8 <= cal["validation_after"][0]["coverage"] <= 0.8 + 4 / n
    assert (job / "reliability.png").stat().st_size > 1000

    def levels(export, split):  # [windows, 3] in original units
        w = next(read_windows(m, str(d / "data"), split, shuffle=False).batch(100_000).as_numpy_iterator())
        col = m.column("y")
        x = tf.constant(w["x"] * col.scale + col.center, tf.float32)
        return tf.saved_model.load(str(export)).signatures[SIGNATURE](x=x)["quantiles"].numpy()[:, 0, :], w, col

    mean = np.mean([levels(job / f"member-{k}" / "export", "val")[0] for k in (0, 1)], axis=0)
    ours, w, col = levels(job / "export", "val")
    shifts = np.asarray(cal["shifts"])[0, 0] * col.scale  # scaled units -> the target's (one row, one target)
    np.testing.assert_allclose(ours, np.sort(mean + shifts, axis=-1), rtol=1e-4, atol=1e-4)
    y = w["y"][:, 0] * col.scale + col.center
    assert 0.8 <= np.mean((y >= ours[:, 0]) & (y <= ours[:, 2])) <= 0.8 + 4 / n  # the 10-90% interval, numpy
    # members.json's validation loss: the MSE of each member's point forecast (its 0.5 level), scaled units
    points = [levels(job / f"member-{k}" / "export", "val")[0][:, 1] for k in (0, 1)]
    val_loss = json.loads((job / "members.json").read_text())["val_loss"]
    mse = [np.mean(((p - col.center) / col.scale - w["y"][:, 0]) ** 2) for p in points]
    np.testing.assert_allclose(val_loss["members"], mse, rtol=1e-3)
    np.testing.assert_allclose(val_loss["ensemble"], np.mean(((np.mean(points, axis=0) - col.center) / col.scale
                                                              - w["y"][:, 0]) ** 2), rtol=1e-3)


def test_calibrate_shifts_each_horizon_step_on_its_own(ar1, tmp_path):
    """A 3-step target sequence: --calibrate shifts each step's levels by that step's validation
    residuals, so the exported 10-90% interval covers at least 80% of the validation targets at every
    step (by under 4 windows more), checked with numpy on the export's output in original units. One
    shift pooled over the steps would leave the far step short and the near one over."""
    import tensorflow as tf

    from training.data import load_manifest, read_windows
    from training.export import SIGNATURE

    d, _ = ar1
    data = tmp_path / "seq"
    preprocess(["--input", str(d / "raw.parquet"), "--output", str(data), "--time-column", "t", "--features", "y",
                "--targets", "y", "--look-back", "8", "--horizon", "3", "--target-sequence", "--train-shards", "2",
                "--eval-shards", "2"])
    job = tmp_path / "job"
    run_single(trainer(data, job, "--quantiles", "0.1,0.9", "--units", "4", "--epochs", "1", "--seed", "3",
                       "--calibrate"), timeout=600)
    cal = json.loads((job / "eval.json").read_text())["quantiles"]["calibration"]
    shifts = np.asarray(cal["shifts"])
    assert shifts.shape == (3, 1, 2) and np.ptp(shifts[:, 0, 1]) > 0  # one per step, target and level
    m = load_manifest(str(data))
    w = next(read_windows(m, str(data), "val", shuffle=False).batch(100_000).as_numpy_iterator())
    col, n = m.column("y"), len(w["y"])
    x = tf.constant(w["x"] * col.scale + col.center, tf.float32)
    q = tf.saved_model.load(str(job / "export")).signatures[SIGNATURE](x=x)["quantiles"].numpy()  # [n, 3, 1, 2]
    y = w["y"].reshape(n, 3) * col.scale + col.center
    covered = ((y >= q[..., 0, 0]) & (y <= q[..., 0, 1])).mean(axis=0)
    assert n == cal["validation_windows"] and ((covered >= 0.8) & (covered <= 0.8 + 4 / n)).all(), covered


def test_miscalibration_is_named_beyond_a_few_points():
    from training.calibration import miscalibrated

    ok = {"lower": 0.1, "upper": 0.9, "nominal": 0.8, "coverage": 0.83}
    off = {**ok, "coverage": 0.62}
    assert miscalibrated([ok]) == []
    assert miscalibrated([off]) == ["the 0.1-0.9 interval covered 62.0% of the validation targets (nominal 80%)"]


def test_the_doctor_judges_the_pinball_loss_a_quantile_run_will_use(ar1, tmp_path):
    """Head, capacity and LR checks build the quantile model and use its loss; the LR sweep's mean
    level is the pinball loss of the train quantiles (not of the train mean)."""
    from evaluation.quantiles import pinball
    from tests.training.conftest import config
    from training.data import load_manifest, sample_windows
    from training.doctor import run_checks

    d, _ = ar1
    cfg = config(d / "data", "--quantiles", "0.1,0.5,0.9", "--units", "128,64")  # the default size
    verdicts = run_checks(cfg, raw=None, out_dir=str(tmp_path / "doc"), sample_size=1024,
                          only=("head", "capacity", "lr"))
    assert [v.status for v in verdicts] == ["PASS", "PASS", "PASS"], [v.evidence for v in verdicts]
    assert "pinball" in verdicts[0].evidence
    m = load_manifest(str(d / "data"))
    y = sample_windows(m, str(d / "data"), n=4096)["y"][:, 0]
    level = pinball(y, np.quantile(y, [0.1, 0.5, 0.9]), (0.1, 0.5, 0.9)).mean()
    reported = float(verdicts[2].evidence.split("mean level ")[1].split(",")[0])
    assert reported == pytest.approx(level, rel=0.25)  # another sample of the same split


def test_without_the_median_the_point_forecast_is_a_mean_head_end_to_end(ar1, tmp_path):
    """--quantiles 0.1,0.9 (with --calibrate): the export's `predictions` is the mean head (the
    true conditional mean here), `quantiles` holds the two levels only, eval.json and config.json
    say "mean", and predict's score mode reproduces eval.json."""
    import tensorflow as tf

    from prediction.cli import run as predict
    from training.data import load_manifest, read_windows
    from training.export import SIGNATURE

    d, _ = ar1
    job = tmp_path / "mean"
    run_single(trainer(d / "data", job, "--quantiles", "0.1,0.9", "--units", "16", "--epochs", "8", "--seed", "0",
                       "--calibrate"), timeout=600)
    m = load_manifest(str(d / "data"))
    w = next(read_windows(m, str(d / "data"), "test", shuffle=False).batch(100_000).as_numpy_iterator())
    col = m.column("y")
    raw_x = w["x"] * col.scale + col.center
    out = tf.saved_model.load(str(job / "export")).signatures[SIGNATURE](x=tf.constant(raw_x, tf.float32))
    q, p = out["quantiles"].numpy()[:, 0, :], out["predictions"].numpy()[:, 0]
    assert q.shape == (len(raw_x), 2) and (q[:, 0] <= q[:, 1]).all()
    center = LEVEL + PHI * (raw_x[:, -1, 0] - LEVEL)  # the true conditional mean (= median: Gaussian noise)
    assert np.median(np.abs(p - center)) < 0.15 * SCALE * SIGMA * Z90
    assert ((p > q[:, 0]) & (p < q[:, 1])).mean() > 0.95  # a point inside its own interval, not a level
    report = json.loads((job / "eval.json").read_text())
    assert report["quantiles"]["point_level"] == "mean" and report["quantiles"]["levels"] == [0.1, 0.9]
    assert json.loads((job / "config.json").read_text())["model"]["point_level"] == "mean"
    y = w["y"][:, 0] * col.scale + col.center
    assert report["model"]["original"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((p - y) ** 2))), rel=1e-4)
    assert "calibration" in report["quantiles"]
    scored = predict(["--export", str(job / "export"), "--input", str(d / "raw.parquet"), "--output",
                      str(tmp_path / "s"), "--split", "test"])["report"]
    assert scored["model"]["original"]["rmse"] == pytest.approx(report["model"]["original"]["rmse"], rel=1e-4)
    assert scored["quantiles"]["point_level"] == "mean"
    assert scored["quantiles"]["intervals"][0]["coverage"] == pytest.approx(
        report["quantiles"]["intervals"][0]["coverage"], abs=1e-9)


def test_a_mean_head_run_forecasts_what_the_point_run_does(ar1, tmp_path):
    """--quantiles 0.1,0.9 against the same run without quantiles (seed, flags): history.json logs
    the mean's MSE (`point_mse`, `val_point_mse`), epoch for epoch the point run's loss and
    val_loss; early stopping watches it (patience 1: both runs end at the first epoch that does not
    lower it, where the summed val_loss would not have stopped); and the two exports' point
    forecasts agree on the validation windows, whose MSE (numpy) is the best epoch's."""
    import tensorflow as tf

    from training.data import load_manifest, read_windows
    from training.export import SIGNATURE

    d, _ = ar1
    flags = ["--units", "8", "--epochs", "30", "--seed", "1", "--patience", "1", "--members", "1"]
    run_single(trainer(d / "data", tmp_path / "point", *flags), timeout=600)
    run_single(trainer(d / "data", tmp_path / "mean", "--quantiles", "0.1,0.9", *flags), timeout=600)
    point = json.loads((tmp_path / "point" / "history.json").read_text())["epochs"]
    epochs = json.loads((tmp_path / "mean" / "history.json").read_text())["epochs"]
    assert len(epochs) == len(point)
    np.testing.assert_allclose([e["point_mse"] for e in epochs], [e["loss"] for e in point], rtol=1e-5)
    watched = [e["val_point_mse"] for e in epochs]
    np.testing.assert_allclose(watched, [e["val_loss"] for e in point], rtol=1e-5)
    stop = next(i for i in range(1, len(watched) + 1) if i == len(watched) or watched[i] >= min(watched[:i]))
    assert len(epochs) == stop + 1 < 30, watched  # stopped by val_point_mse, before the epoch cap
    by_loss = next((i for i in range(1, len(epochs)) if epochs[i]["val_loss"] >= min(e["val_loss"] for e in epochs[:i])),
                   None)
    assert by_loss != stop  # watching the summed val_loss would have stopped elsewhere (seed 1: not by then)
    m = load_manifest(str(d / "data"))
    w = next(read_windows(m, str(d / "data"), "val", shuffle=False).batch(100_000).as_numpy_iterator())
    col = m.column("y")
    x = tf.constant(w["x"] * col.scale + col.center, tf.float32)
    p, q = ((tf.saved_model.load(str(tmp_path / j / "export")).signatures[SIGNATURE](x=x)["predictions"].numpy()[:, 0]
             - col.center) / col.scale for j in ("mean", "point"))
    np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5)
    assert float(np.mean((p - w["y"][:, 0]) ** 2)) == pytest.approx(min(watched), rel=2e-3)
