"""Test-split evaluation beside baselines computed on the same windows.

A model is only useful if it beats the trivial forecasts: persistence (the target's last
observed value, when the target is also an input), the seasonal naive forecast (the same
time one season before) and the training mean. Metrics are reported in scaled units (what
the loss sees) and in original units (what users read), with MASE and, for a target
sequence, per horizon step (forecast_metrics.py).
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from contract.manifest import Manifest
from contract.records import BACKTEST
from contract.series_scaling import SeriesScaling
from training import forecast_metrics as fm
from training.data import read_windows, sample_windows
from training.export import load_series_scaling, window_scaling


def collect(model: tf.keras.Model, manifest: Manifest, data_dir: str, split: str = "test", batch: int = 1024):
    """(x, y_true, y_pred, series ids, times of the last inputs) over every window of a split, scaled units."""
    ds = read_windows(manifest, data_dir, split, shuffle=False, with_ids=True).batch(batch)
    xs, ys, ps, sids, ts = [], [], [], [], []
    for w in ds:
        xs.append(w["x"].numpy())
        ys.append(w["y"].numpy())
        sids.append(w["sid"].numpy())
        ts.append(w["t"].numpy())
        ps.append(model(w["x"], training=False).numpy())
    return tuple(np.concatenate(a) for a in (xs, ys, ps, sids, ts))


def regression_report(manifest: Manifest, x: np.ndarray, y: np.ndarray, p: np.ndarray, *,
                      history: np.ndarray | None = None, season: int = 0, sid: np.ndarray | None = None,
                      series: SeriesScaling | None = None) -> dict:
    """Model and baselines in scaled and original units; per horizon step for a target sequence;
    MASE against the in-sample seasonal naive error of `history` (train inputs of the target,
    original units, (windows, look_back)) when the target is an input. With per-series
    scaling (`series`), each window is unscaled with its series' statistics (`sid`)."""
    yo, po, xo, last = original_units(manifest, x, y, p, sid, series)
    w = manifest.window
    distances = w.target_distances
    m = fm.season_length(manifest.time_kind, manifest.step, season)
    scale_season = m if history is not None and m and history.shape[1] > m else 1
    scale = fm.mase_scale(history, scale_season) if history is not None else None
    report = {
        "windows": int(len(y)),
        "model": {"scaled": fm.metrics(y, p), "original": fm.metrics(yo, po, scale)},
        "baselines": {},
        "mase_scale": {"season": scale_season, "mae": scale} if scale else None,
    }
    predictions = {"train_mean": np.broadcast_to(np.array([manifest.column(t).mean for t in manifest.targets]),
                                                 yo.shape)}
    if xo is not None:
        predictions["persistence"] = last
        positions = fm.seasonal_positions(w.look_back, distances, m) if m else None
        if positions is not None:
            predictions["seasonal_persistence"] = xo[:, positions, :]
            report["season"] = m
    for name, pred in predictions.items():
        report["baselines"][name] = {"original": fm.metrics(yo, pred, scale)}
    if len(distances) > 1:
        report["model"]["per_step"] = fm.per_step(yo, po, distances, scale)
        for name, pred in predictions.items():
            report["baselines"][name]["per_step"] = fm.per_step(yo, pred, distances, scale)
    rm = report["model"]["original"]["rmse"]
    for b in report["baselines"].values():
        b["model_rmse_vs_baseline"] = rm / b["original"]["rmse"] if b["original"]["rmse"] else None
    return report


def classification_report(manifest: Manifest, y: np.ndarray, p: np.ndarray) -> dict:
    y = y.reshape(len(y), -1)[:, 0].astype(np.int64)
    if manifest.task == "binary":
        pred = (p.reshape(len(p)) >= 0.5).astype(np.int64)
        prior = manifest.column(manifest.targets[0]).mean
        majority = int(prior >= 0.5)
    else:
        pred = p.argmax(axis=-1)
        majority = 0
    return {
        "windows": int(len(y)),
        "model": {"accuracy": float((pred == y).mean())},
        "baselines": {"majority_class": {"accuracy": float((y == majority).mean())}},
    }


def original_units(manifest: Manifest, x, y, p, sid=None, series: SeriesScaling | None = None):
    """(targets, predictions, the target's inputs, persistence) in original units: targets,
    predictions and persistence as (windows, steps, targets) rows, the inputs as (windows,
    look_back, targets); the last two None when a target is not an input."""
    tc, ts = window_scaling(manifest, manifest.targets, y, sid, series)
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


def evaluate(model: tf.keras.Model, manifest: Manifest, data_dir: str, *, season: int = 0) -> dict:
    """Every test window (no batch is dropped), scored beside the baselines; with backtest
    windows in the dataset, the rolling-origin backtest too."""
    x, y, p, sid, _ = collect(model, manifest, data_dir)
    if manifest.task != "regression":
        return classification_report(manifest, y, p)
    series = load_series_scaling(manifest, data_dir)
    history = target_history(manifest, data_dir, series=series)
    report = regression_report(manifest, x, y, p, history=history, season=season, sid=sid, series=series)
    if manifest.windows(BACKTEST):
        x, y, p, sid, t = collect(model, manifest, data_dir, BACKTEST)
        bt = regression_report(manifest, x, y, p, history=history, season=season, sid=sid, series=series)
        yo, po, _, last = original_units(manifest, x, y, p, sid, series)
        report["backtest"] = {"every": int(manifest.options.get("backtest_every", 0)), **bt,
                              "per_origin": per_origin(manifest, yo, po, last, t)}
    return report


def per_origin(manifest: Manifest, yo, po, last, t) -> list[dict]:
    """Model (and persistence) RMSE per forecast origin (`t`, each window's last input time),
    from original_units' rows, in time order."""
    yo, po = yo.reshape(len(t), -1), po.reshape(len(t), -1)
    last = None if last is None else last.reshape(len(t), -1)
    out = []
    for origin in np.unique(t):
        rows = t == origin
        row = {"origin": fm.time_label(manifest.time_kind, int(origin)), "windows": int(rows.sum()),
               "rmse": float(np.sqrt(np.mean((yo[rows] - po[rows]) ** 2)))}
        if last is not None:
            row["persistence_rmse"] = float(np.sqrt(np.mean((yo[rows] - last[rows]) ** 2)))
        out.append(row)
    return out


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
        if scale:
            lines.append(f"MASE: MAE / {scale['mae']:.4g}, the in-sample MAE of the seasonal naive forecast "
                         f"(season {scale['season']} steps, train rows)")
        if "per_step" in report["model"]:
            lines.append("RMSE per horizon step: " + ", ".join(
                f"{s['step']}: {s['rmse']:.4f}" for s in report["model"]["per_step"]))
        s = report["model"]["scaled"]
        lines.append(f"model in scaled units: RMSE {s['rmse']:.4f}, MAE {s['mae']:.4f}")
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


def write_report(report: dict, path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(report, f, indent=2)
