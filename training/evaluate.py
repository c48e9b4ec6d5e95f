"""Test-split evaluation beside baselines computed on the same windows, batch by batch.

The model and each baseline (evaluation/report.py) are scored per batch into mergeable
accumulators (evaluation/accumulators.py), so memory does not grow with the test split.
Metrics are reported in scaled units (what the loss sees) and in original units (what users
read), with MASE and, for a target sequence, per horizon step.
"""

from __future__ import annotations

import json
import posixpath

import numpy as np

from contract.logs import import_tensorflow
from contract.manifest import Manifest
from contract.records import BACKTEST
from contract.series_scaling import SeriesScaling
from evaluation import metrics as fm
from evaluation import report as er
from evaluation.accumulators import ClassificationAccumulator, RegressionAccumulator
from evaluation.quantiles import point_index, point_level
from training.data import read_windows, sample_windows
from training.export import load_series_scaling, window_scaling

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)


def batches(model: tf.keras.Model, manifest: Manifest, data_dir: str, split: str = "test", batch: int = 1024):
    """(x, y_true, y_pred, series ids, times of the last inputs) per batch of a split, scaled units."""
    ds = read_windows(manifest, data_dir, split, shuffle=False, with_ids=True).batch(batch)
    for w in ds:
        yield w["x"].numpy(), w["y"].numpy(), model(w["x"], training=False).numpy(), w["sid"].numpy(), w["t"].numpy()


def collect(model: tf.keras.Model, manifest: Manifest, data_dir: str, split: str = "test", batch: int = 1024):
    """Every window of a split at once (tests and small splits only: evaluation streams)."""
    parts = list(batches(model, manifest, data_dir, split, batch))
    return tuple(np.concatenate(a) for a in zip(*parts, strict=True))


def add_batch(acc: RegressionAccumulator, plan: er.Plan, manifest: Manifest, x, y, p, sid=None,
              series: SeriesScaling | None = None, t=None, *, qscores: er.QuantileScores | None = None,
              q=None) -> RegressionAccumulator:
    """Score one batch of scaled windows: model and baselines in original units, model in scaled units;
    with `qscores`, a quantile model's levels `q` (scaled, [..., Q]) beside the same baselines."""
    tc, ts = window_scaling(manifest, manifest.targets, y, sid, series)  # once for the point and the levels
    yo, po, xo, _ = original_units(manifest, x, y, p, sid, series, scaling=(tc, ts))
    forecasts = er.baselines(plan, yo, xo)
    acc.add(yo, po, forecasts, y_scaled=fm.as_rows(y), p_scaled=fm.as_rows(p), origins=t)
    if qscores is not None:
        qo = np.asarray(q, np.float64) * np.asarray(ts)[..., None] + np.asarray(tc)[..., None]
        qscores.add(yo, qo[:, None] if qo.ndim == 3 else qo, forecasts)  # (W, rows, T, Q)
    return acc


def regression_report(manifest: Manifest, x: np.ndarray, y: np.ndarray, p: np.ndarray, *,
                      history: np.ndarray | None = None, season: int = 0, sid: np.ndarray | None = None,
                      series: SeriesScaling | None = None) -> dict:
    """The report of one batch of windows (see evaluate for a split). MASE against the in-sample
    seasonal naive error of `history` (train inputs of the target, original units, (windows,
    look_back)); with per-series scaling (`series`), each window is unscaled with its series'
    statistics (`sid`)."""
    plan = er.plan(manifest, history=history, season=season)
    acc = add_batch(RegressionAccumulator(plan.steps), plan, manifest, x, y, p, sid, series)
    return er.regression_result(acc, plan, manifest.time_kind)


def classification_report(manifest: Manifest, y: np.ndarray, p: np.ndarray) -> dict:
    return ClassificationAccumulator().add(y, *er.classification_predictions(manifest, p)).result()


def original_units(manifest: Manifest, x, y, p, sid=None, series: SeriesScaling | None = None, *, scaling=None):
    """(targets, predictions, the target's inputs, persistence) in original units: targets,
    predictions and persistence as (windows, steps, targets) rows, the inputs as (windows,
    look_back, targets); the last two None when a target is not an input. `scaling`: the targets'
    (center, scale) per window when the caller has them already."""
    tc, ts = scaling if scaling is not None else window_scaling(manifest, manifest.targets, y, sid, series)
    yo, po = fm.as_rows(y * ts + tc), fm.as_rows(p * ts + tc)
    xo = target_inputs(manifest, x, sid, series)
    last = None if xo is None else np.repeat(xo[:, -1:, :], yo.shape[1], axis=1)
    return yo, po, xo, last


def target_inputs(manifest: Manifest, x: np.ndarray, sid: np.ndarray | None = None,
                  series: SeriesScaling | None = None) -> np.ndarray | None:
    """The target column(s) among the windows' inputs in original units, (windows, look_back,
    targets); None when a target is not an input."""
    idx = manifest.target_positions
    if idx is None:
        return None
    tc, ts = window_scaling(manifest, manifest.targets, x, sid, series)
    return x[:, :, list(idx)].astype(np.float64) * ts + tc


def target_history(manifest: Manifest, data_dir: str, n: int = 20_000,
                   series: SeriesScaling | None = None) -> np.ndarray | None:
    """Up to n train windows' inputs of the target column(s) in original units, (windows, look_back)."""
    if manifest.target_positions is None or not manifest.windows("train"):
        return None
    w = sample_windows(manifest, data_dir, "train", n=min(n, manifest.windows("train")), with_ids=True)
    xo = target_inputs(manifest, w["x"], w["sid"], series)
    return np.concatenate([xo[:, :, j] for j in range(xo.shape[2])])


def score_split(model: tf.keras.Model, manifest: Manifest, data_dir: str, split: str, plan: er.Plan,
                series: SeriesScaling | None, *, per_origin: bool = False, batch: int = 1024,
                quantiles: tuple[float, ...] = ()) -> dict:
    """One pass over a split, batch by batch: memory holds one batch and the accumulators. A
    quantile model (`quantiles`: its levels) is scored on its point level like any model, and
    its levels with evaluation/quantiles.py (pinball, coverage and width, in original units)."""
    acc = RegressionAccumulator(plan.steps, per_origin=per_origin)
    qscores = er.QuantileScores(plan, quantiles) if quantiles else None
    k = point_index(quantiles) if quantiles else None
    for x, y, p, sid, t in batches(model, manifest, data_dir, split, batch):
        q, p = (p[..., :len(quantiles)], p[..., k]) if qscores is not None else (None, p)
        add_batch(acc, plan, manifest, x, y, p, sid, series, t if per_origin else None, qscores=qscores, q=q)
    report = er.regression_result(acc, plan, manifest.time_kind)
    if qscores is not None:
        report["quantiles"] = qscores.result(plan, point_level(quantiles))
    return report


def evaluation_plan(manifest: Manifest, data_dir: str, series: SeriesScaling | None, *, season: int = 0,
                    levels: tuple[float, ...] = ()) -> er.Plan:
    """The report's plan from the dataset: its baselines, MASE, and (with quantile `levels`) the
    naive baselines' intervals, from a sample of train windows."""
    return er.plan(manifest, history=target_history(manifest, data_dir, series=series), season=season,
                   levels=levels)


def evaluate(model: tf.keras.Model, manifest: Manifest, data_dir: str, *, season: int = 0, batch: int = 1024,
             plan: er.Plan | None = None, quantiles: tuple[float, ...] = ()) -> dict:
    """Every test window (no batch is dropped), scored beside the baselines; with backtest
    windows in the dataset, the rolling-origin backtest too."""
    if manifest.task != "regression":
        acc = ClassificationAccumulator()
        for _, y, p, _, _ in batches(model, manifest, data_dir, batch=batch):
            acc.add(y, *er.classification_predictions(manifest, p))
        return acc.result()
    series = load_series_scaling(manifest, data_dir)
    plan = plan or evaluation_plan(manifest, data_dir, series, season=season, levels=quantiles)
    report = score_split(model, manifest, data_dir, "test", plan, series, batch=batch, quantiles=quantiles)
    if manifest.windows(BACKTEST):
        bt = score_split(model, manifest, data_dir, BACKTEST, plan, series, per_origin=True, batch=batch,
                         quantiles=quantiles)
        report["backtest"] = {"every": int(manifest.options.get("backtest_every", 0)), **bt}
    return report


def quantile_lines(report: dict) -> list[str]:
    """A quantile model's levels and central intervals beside the naive intervals (original units)."""
    q = report.get("quantiles")
    if not q:
        return []
    lines = [f"quantiles {', '.join(f'{x:g}' for x in q['levels'])} (point forecast: {q['point_level']}): mean "
             f"pinball {q['mean_pinball']:.4g}, CRPS ~{q['crps']:.4g}; observed "
             + ", ".join(f"{o:.3f}" for o in q["observed"])]
    for name, r in [("model", q), *q.get("baselines", {}).items()]:
        for i in r["intervals"]:
            lines.append(f"{name:<22}interval {i['lower']:g}-{i['upper']:g}: coverage {i['coverage']:.3f} (nominal "
                         f"{i['nominal']:g}), mean width {i['mean_width']:.4g}, interval score {i['interval_score']:.4g}")
    notes = report.get("notes", {})
    lines += [f"{k.removesuffix('_interval')}: {v}" for k, v in notes.items() if k.endswith("_interval")]
    return lines


def format_table(report: dict) -> str:
    lines = [f"test split: {report['windows']:,} windows"]
    if "rmse" in report["model"].get("original", {}):
        scale = report.get("mase_scale")
        mase_head = f"{'MASE':>8}" if scale else ""
        lines.append(f"{'':<22}{'RMSE':>10}{'MAE':>10}{mase_head}{'model vs it':>15}   (original units)")
        rows = [("model", report["model"]["original"])] + [(k, v["original"]) for k, v in report["baselines"].items()]
        rm = report["model"]["original"]["rmse"]
        for name, m in rows:
            rel = "" if name == "model" else f"{(rm / m['rmse'] - 1) * 100:+.1f}%"
            mase = f"{m['mase']:>8.3f}" if scale else ""
            lines.append(f"{name:<22}{m['rmse']:>10.4f}{m['mae']:>10.4f}{mase}{rel:>15}")
        notes = report.get("notes", {})
        if scale and scale["season"] > 1:
            lines.append(f"MASE: MAE / {scale['mae']:.4g}, the in-sample MAE of the seasonal naive forecast "
                         f"(season {scale['season']} steps, train rows)")
        elif scale:
            lines.append(f"MASE: MAE / {scale['mae']:.4g}, the in-sample MAE of the one-step naive forecast (train rows)"
                         + (f"; {notes['mase'].split(': ', 1)[1]}" if "mase" in notes else ""))
        if "seasonal_persistence" in notes:
            lines.append(f"seasonal naive: {notes['seasonal_persistence']}")
        if "per_step" in report["model"]:
            lines.append("RMSE per horizon step: " + ", ".join(
                f"{s['step']}: {s['rmse']:.4f}" for s in report["model"]["per_step"]))
        s = report["model"]["scaled"]
        lines.append(f"model in scaled units: RMSE {s['rmse']:.4f}, MAE {s['mae']:.4f}")
        lines += quantile_lines(report)
        bt = report.get("backtest")
        if bt:
            base = "; ".join(f"{k} {v['original']['rmse']:.4f}" for k, v in bt["baselines"].items())
            lines.append(f"backtest: {len(bt['per_origin'])} origins every {bt['every']} steps, {bt['windows']:,} "
                         f"windows: model RMSE {bt['model']['original']['rmse']:.4f} ({base})")
    else:
        lines.append(f"model accuracy {report['model']['accuracy']:.4f}")
        for k, v in report["baselines"].items():
            lines.append(f"{k} accuracy {v['accuracy']:.4f}")
    return "\n".join(lines)


def write_report(report: dict, directory: str) -> None:
    """<directory>/eval.json, and for a quantile report reliability.png beside it (a run's and an
    ensemble's alike)."""
    with tf.io.gfile.GFile(posixpath.join(directory, "eval.json"), "w") as f:
        json.dump(report, f, indent=2)
    if "quantiles" in report:
        from training.plots import plot_reliability

        plot_reliability(report["quantiles"], posixpath.join(directory, "reliability.png"))
