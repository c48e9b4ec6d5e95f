"""Test-split evaluation beside baselines computed on the same windows.

A model is only useful if it beats the trivial forecasts: persistence (the target's last
observed value, when the target is also an input) and the training mean. Metrics are
reported in scaled units (what the loss sees) and in original units (what users read).
"""

from __future__ import annotations

import json

import numpy as np
import tensorflow as tf

from contract.manifest import Manifest
from training.data import read_windows
from training.export import scaling_arrays

DAY_NS = 86_400_000_000_000


def collect(model: tf.keras.Model, manifest: Manifest, data_dir: str, split: str = "test", batch: int = 1024):
    """(x, y_true, y_pred) over every window of a split, scaled units."""
    ds = read_windows(manifest, data_dir, split, shuffle=False).batch(batch)
    xs, ys, ps = [], [], []
    for w in ds:
        xs.append(w["x"].numpy())
        ys.append(w["y"].numpy())
        ps.append(model(w["x"], training=False).numpy())
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ps)


def seasonal_offset(manifest: Manifest) -> int | None:
    """Index in the input window of 'the same time one day before the target', if it is there."""
    if manifest.time_kind != "timestamp" or not manifest.step or DAY_NS % manifest.step:
        return None
    return manifest.window.input_position_before_target(DAY_NS // manifest.step)


def _reg_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    err = (p - y).astype(np.float64)
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err))), "mse": float(np.mean(err**2))}


def regression_report(manifest: Manifest, x: np.ndarray, y: np.ndarray, p: np.ndarray) -> dict:
    tc, ts = scaling_arrays(manifest, manifest.targets)
    yo, po = y * ts + tc, p * ts + tc
    report = {
        "windows": int(len(y)),
        "model": {"scaled": _reg_metrics(y, p), "original": _reg_metrics(yo, po)},
        "baselines": {},
    }
    mean = np.array([manifest.column(t).mean for t in manifest.targets], np.float64)
    report["baselines"]["train_mean"] = {"original": _reg_metrics(yo, np.broadcast_to(mean, yo.shape))}
    if all(t in manifest.features for t in manifest.targets):
        idx = [manifest.features.index(t) for t in manifest.targets]
        fc, fs = scaling_arrays(manifest, manifest.features)
        last = x[:, -1, idx] * fs[idx] + fc[idx]
        if yo.ndim == 3:
            last = np.repeat(last[:, None, :], yo.shape[1], axis=1)
        report["baselines"]["persistence"] = {"original": _reg_metrics(yo, last)}
        pos = seasonal_offset(manifest)
        if pos is not None:
            same_time = x[:, pos, idx] * fs[idx] + fc[idx]
            report["baselines"]["seasonal_persistence"] = {"original": _reg_metrics(yo, same_time)}
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


def evaluate(model: tf.keras.Model, manifest: Manifest, data_dir: str) -> dict:
    x, y, p = collect(model, manifest, data_dir)
    if manifest.task == "regression":
        return regression_report(manifest, x, y, p)
    return classification_report(manifest, y, p)


def format_table(report: dict) -> str:
    lines = [f"test split: {report['windows']:,} windows"]
    if "rmse" in report["model"].get("original", {}):
        lines.append(f"{'':<22}{'RMSE':>10}{'MAE':>10}{'model vs it':>15}   (original units)")
        rows = [("model", report["model"]["original"])] + [(k, v["original"]) for k, v in report["baselines"].items()]
        rm = report["model"]["original"]["rmse"]
        for name, m in rows:
            rel = "" if name == "model" else f"{(rm / m['rmse'] - 1) * 100:+.1f}%"
            lines.append(f"{name:<22}{m['rmse']:>10.4f}{m['mae']:>10.4f}{rel:>15}")
        s = report["model"]["scaled"]
        lines.append(f"model in scaled units: RMSE {s['rmse']:.4f}, MAE {s['mae']:.4f}")
    else:
        lines.append(f"model accuracy {report['model']['accuracy']:.4f}")
        for k, v in report["baselines"].items():
            lines.append(f"{k} accuracy {v['accuracy']:.4f}")
    return "\n".join(lines)


def write_report(report: dict, path: str) -> None:
    with tf.io.gfile.GFile(path, "w") as f:
        json.dump(report, f, indent=2)
