"""`python -m training.doctor` (`seqscale-doctor`): why does my LSTM not learn?

Runs fast checks on a preprocessed dataset and a training configuration (the trainer's
own flags) on a sample of windows, and prints one verdict per check with the evidence
and the fix, in the order the causes bite most often:

  1. scaling    inputs and targets near mean 0 / std 1 on train; statistics from the
                training range only; no column dominating by orders of magnitude
  2. windows    sampled windows equal the raw rows they came from (with --raw); no window
                crosses a split; the target sits `horizon` steps after the last input
  3. capacity   the model can overfit a single batch (loss falls >= 90% in a few hundred
                steps), else the model or the pipeline is broken
  4. head       output activation and loss fit the target's type and range
  5. lr         an LR range test (loss vs LR plot) and the LR it suggests for the global
                batch, against the configured (scaled) LR
  6. batch      steps per epoch and the gradient noise scale at the chosen global batch

Exit status: 0 when no check fails, 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import math
import os
import posixpath
import sys
from dataclasses import asdict, dataclass, replace

import training  # noqa: F401  (Keras 2 before TensorFlow)

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass
class Verdict:
    check: str
    status: str
    evidence: str
    fix: str = ""


# ------------------------------------------------------------------ helpers


def _model(manifest, cfg, seed=0):
    from training.model import build_model

    return build_model(manifest, cfg.model, seed=seed)


def _loss(manifest, cfg):
    from training.model import make_loss, resolve_head

    return make_loss(resolve_head(manifest, cfg.model))


# ------------------------------------------------------------------ 1. scaling


def check_scaling(manifest, sample) -> Verdict:
    import numpy as np

    problems, evidence = [], []
    x = sample["x"].reshape(-1, sample["x"].shape[-1])
    names, mean, std = list(manifest.features), list(x.mean(axis=0)), list(x.std(axis=0))
    if manifest.task == "regression":
        y = sample["y"].reshape(-1, len(manifest.targets))
        names += [f"target {t}" for t in manifest.targets]
        mean += list(y.mean(axis=0))
        std += list(y.std(axis=0))
    mean, std = np.array(mean), np.array(std)
    for name, m, s in zip(names, mean, std, strict=True):
        evidence.append(f"{name}: mean {m:+.2f} std {s:.2f}")
    if manifest.scaler == "standard":
        bad = [n for n, m, s in zip(names, mean, std, strict=True) if abs(m) > 3 or not 0.05 < s < 20]
    elif manifest.scaler == "minmax":
        bad = [n for n, m, s in zip(names, mean, std, strict=True) if not -1.5 < m < 2.5 or s > 5]
    else:
        bad = [n for n, m, s in zip(names, mean, std, strict=True) if abs(m) > 5 or not 0.01 < s < 50]
    if bad:
        problems.append(f"columns far from the {manifest.scaler} range on train: {', '.join(bad)}")
    spread = std[std > 0]
    if len(spread) > 1 and spread.max() / spread.min() > 100:
        big = names[int(np.argmax(std))]
        problems.append(f"column {big!r} varies {spread.max() / spread.min():.0f}x more than the smallest: it dominates")
    train_rows = manifest.counts.rows_per_split.get("train")
    counts = {c.count for c in manifest.columns}
    if train_rows is not None and counts != {train_rows}:
        problems.append(f"statistics cover {sorted(counts)} rows but the training range has {train_rows}: they leak "
                        "rows from outside the training range")
    unscaled_big = [c.name for c in manifest.columns if not c.scaled and (abs(c.mean) > 10 or c.std > 10)]
    if unscaled_big:
        problems.append(f"unscaled columns with large values: {', '.join(unscaled_big)}")
    if problems:
        return Verdict("scaling", FAIL, "; ".join(problems) + " | " + "; ".join(evidence),
                       "scale every input (drop columns from --unscaled; keep the default standard scaler) and "
                       "rerun preprocessing; statistics must come from the training range only")
    return Verdict("scaling", PASS, f"{manifest.scaler} scaling from {train_rows} training rows; " + "; ".join(evidence))


# ------------------------------------------------------------------ 2. windows


def check_windows(manifest, sample, raw: list[str] | None = None, n: int = 64) -> Verdict:

    w, step, val_start = manifest.window, manifest.step, manifest.split_boundaries.val_start
    t = sample["t"]
    first = w.first_input_time(t, step)
    target = w.target_time(t, step)
    outside = int(((first < manifest.time_range[0]) | (target >= val_start)).sum())
    notes = [f"{len(t)} train windows: last input time + horizon lies before val_start in "
             f"{len(t) - outside} (windows with gaps are shorter in time, never longer)"]
    problems = []
    if (target >= val_start).any():
        problems.append(f"{int((target >= val_start).sum())} train windows have their target in the validation range")
    if raw:
        checked, mismatched, missing = _compare_with_raw(manifest, sample, raw, n)
        notes.append(f"{checked} sampled windows compared with the raw rows: {mismatched} differ, {missing} not found")
        if mismatched or missing:
            problems.append(f"{mismatched + missing} of {checked + missing} sampled windows do not equal the raw rows "
                            "they should come from (inputs x[t-L+1..t], target y[t+H])")
    else:
        notes.append("raw input not given (--raw): window contents not compared with the source rows")
    if problems:
        return Verdict("windows", FAIL, "; ".join(problems + notes),
                       "rerun preprocessing with the intended --look-back/--horizon and time column; check that --raw "
                       "names the files the dataset was built from")
    return Verdict("windows", PASS if raw else WARN, "; ".join(notes),
                   "" if raw else "pass --raw 'input files' to compare windows with their source rows")


def _compare_with_raw(manifest, sample, raw: list[str], n: int) -> tuple[int, int, int]:
    """(windows checked, windows that differ, windows whose rows were not found)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    from contract.records import series_id

    cols = [manifest.time_column, *([manifest.series_column] if manifest.series_column else []),
            *dict.fromkeys(list(manifest.features) + list(manifest.targets))]
    fmt = "parquet" if raw[0].lower().endswith((".parquet", ".pq")) else "csv"
    table = pads.dataset(raw, format=fmt).to_table(columns=cols)
    tcol = table.column(manifest.time_column)
    if manifest.time_kind == "timestamp":
        tcol = pc.cast(tcol, pa.timestamp("ns"))
    times = tcol.cast(pa.int64()).to_numpy()
    keys = (np.array([str(k) for k in table.column(manifest.series_column).to_pylist()])
            if manifest.series_column else np.full(len(times), ""))
    sids = {k: series_id(k) for k in np.unique(keys)}
    sid_rows = np.array([sids[k] for k in keys])
    center = {c.name: c.center for c in manifest.columns}
    scale = {c.name: c.scale for c in manifest.columns}
    feat = np.column_stack([(table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) - center[c]) / scale[c]
                            for c in manifest.features])
    targ_raw = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                                for c in manifest.targets])
    if manifest.task == "regression":
        targ = (targ_raw - [center[c] for c in manifest.targets]) / [scale[c] for c in manifest.targets]
    else:
        targ = targ_raw
    checked = mismatched = missing = 0
    by_series = {}
    for s in np.unique(sid_rows):
        idx = np.flatnonzero(sid_rows == s)
        by_series[s] = idx[np.argsort(times[idx], kind="stable")]
    w = manifest.window
    for i in range(min(n, len(sample["t"]))):
        rows = by_series.get(int(sample["sid"][i]))
        if rows is None:
            missing += 1
            continue
        pos = int(np.searchsorted(times[rows], sample["t"][i]))
        start = np.array([w.start_of_last_input(pos)])
        if pos >= len(rows) or times[rows][pos] != sample["t"][i] or start[0] < 0 or w.target_index(start)[0] >= len(rows):
            missing += 1
            continue
        expected_y = targ[rows[w.target_rows_of(start)[0]]]
        x_ok = np.allclose(feat[rows[w.input_rows(start)[0]]], sample["x"][i], atol=1e-4, rtol=1e-4)
        y_ok = np.allclose(expected_y, np.asarray(sample["y"][i]).reshape(expected_y.shape), atol=1e-4, rtol=1e-4)
        checked += 1
        mismatched += int(not (x_ok and y_ok))
    return checked, mismatched, missing


# ------------------------------------------------------------------ 3. capacity


def check_capacity(manifest, cfg, sample, steps: int = 300, batch: int = 64) -> Verdict:
    import tensorflow as tf

    cfg1 = replace(cfg, model=replace(cfg.model, dropout=0.0))
    model = _model(manifest, cfg1, seed=cfg.train.seed)
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=_loss(manifest, cfg1))
    x, y = sample["x"][:batch], sample["y"][:batch]
    first = float(model.evaluate(x, y, verbose=0))
    model.fit(x, y, batch_size=batch, epochs=steps, verbose=0)
    last = float(model.evaluate(x, y, verbose=0))
    drop = 1 - last / first if first > 0 else 0.0
    evidence = f"one batch of {len(x)} windows, {steps} Adam steps: loss {first:.4g} -> {last:.4g} ({drop * 100:.0f}% lower)"
    if not math.isfinite(last) or drop < 0.9:
        return Verdict("capacity", FAIL, evidence,
                       "the model cannot even memorize one batch: add units/layers (--units), check that targets "
                       "belong to their inputs (check 'windows'), and that the head fits (check 'head')")
    return Verdict("capacity", PASS, evidence)


# ------------------------------------------------------------------ 4. head


def check_head(manifest, cfg, sample) -> Verdict:
    import numpy as np

    from training.model import HeadError, resolve_head

    y = np.asarray(sample["y"]).reshape(-1)
    try:
        head = resolve_head(manifest, cfg.model)
    except HeadError as e:
        return Verdict("head", FAIL, f"target range [{y.min():.3g}, {y.max():.3g}] ({manifest.task}): {e}",
                       "use --head-activation auto --loss auto: linear+MSE for regression, sigmoid+binary "
                       "cross-entropy for 0/1 labels, softmax+sparse categorical cross-entropy for classes")
    if manifest.task == "binary" and not set(np.unique(y)) <= {0.0, 1.0}:
        return Verdict("head", FAIL, f"binary labels take values {sorted(set(np.unique(y)))[:5]}",
                       "labels must be 0 or 1")
    return Verdict("head", PASS, f"{head.activation} output with {head.loss} for a {manifest.task} target in "
                                 f"[{y.min():.3g}, {y.max():.3g}] (as stored in the shards)")


# ------------------------------------------------------------------ 5. learning rate


def lr_range_test(manifest, cfg, sample, *, lo=1e-6, hi=3.0, steps=120, batch=64):
    """(lrs, smoothed losses) of an exponential LR sweep on a fresh model."""
    import numpy as np
    import tensorflow as tf

    model = _model(manifest, replace(cfg, model=replace(cfg.model, dropout=0.0)), seed=cfg.train.seed)
    opt = tf.keras.optimizers.SGD(lo, momentum=cfg.train.momentum) if cfg.train.optimizer == "sgd" \
        else tf.keras.optimizers.Adam(lo)
    loss_fn = _loss(manifest, cfg)
    lrs = lo * (hi / lo) ** (np.arange(steps) / (steps - 1))
    x, y = sample["x"], sample["y"]
    losses, smooth, best = [], None, math.inf
    for i, lr in enumerate(lrs):
        j = (i * batch) % max(1, len(x) - batch)
        xb, yb = tf.constant(x[j : j + batch]), tf.constant(y[j : j + batch])
        opt.learning_rate.assign(lr)
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables,
                                strict=True))
        v = float(loss)
        smooth = v if smooth is None else 0.8 * smooth + 0.2 * v
        losses.append(smooth if math.isfinite(v) else math.inf)
        best = min(best, smooth)
        if not math.isfinite(v) or smooth > 4 * best:
            break
    return lrs[: len(losses)], np.array(losses)


def check_lr(manifest, cfg, sample, peak_lr: float, global_batch: int, plot_path: str | None = None) -> Verdict:
    import numpy as np

    from training.schedule import default_rule, scale_lr

    lrs, losses = lr_range_test(manifest, cfg, sample)
    finite = np.isfinite(losses)
    i_min = int(np.argmin(np.where(finite, losses, np.inf)))
    lr_min = float(lrs[i_min])
    suggested_batch = lr_min / 10  # one decade below the loss minimum: the usual safe pick
    rule = default_rule(cfg.train.optimizer) if cfg.train.lr_scaling == "auto" else cfg.train.lr_scaling
    # the sweep ran at batch 64: rescale its suggestion to the global batch with the same rule
    suggested = scale_lr(suggested_batch, global_batch, 64, rule)
    if plot_path:
        _plot_lr(lrs, losses, peak_lr, suggested, plot_path)
    after = np.flatnonzero((~finite | (losses > 4 * losses[i_min])) & (np.arange(len(losses)) > i_min))
    diverged = float(lrs[after[0]]) if len(after) else None
    evidence = (f"LR sweep 1e-6..3 at batch 64: lowest loss at LR {lr_min:.2g}"
                + (f", diverges from {diverged:.2g}" if diverged is not None else "")
                + f"; suggested peak LR for global batch {global_batch} ({rule} rule): {suggested:.2g}; "
                f"configured peak LR {peak_lr:.2g}")
    if peak_lr > 3 * lr_min * math.sqrt(max(1, global_batch / 64)):
        return Verdict("lr", FAIL, evidence + " -- far too high: the loss diverges or sits flat",
                       f"lower --base-lr so the peak is about {suggested:.2g} (keep --lr-scaling for the batch)")
    if peak_lr < suggested / 100:
        return Verdict("lr", WARN, evidence + " -- very low: training will crawl",
                       f"raise --base-lr so the peak is about {suggested:.2g}")
    return Verdict("lr", PASS, evidence)


def _plot_lr(lrs, losses, peak, suggested, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from training.plots import save_figure

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(lrs, losses, marker=".")
    ax.axvline(peak, color="tab:red", linestyle="--", label=f"configured peak {peak:.2g}")
    ax.axvline(suggested, color="tab:green", linestyle=":", label=f"suggested {suggested:.2g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("LR range test")
    ax.legend()
    save_figure(fig, path)


# ------------------------------------------------------------------ 6. batch size


def gradient_noise_scale(manifest, cfg, sample, small: int = 16, big: int = 256, repeats: int = 4) -> float:
    """B_simple = tr(Sigma) / |G|^2 from gradient norms at two batch sizes (McCandlish et al., 2018)."""
    import numpy as np
    import tensorflow as tf

    model = _model(manifest, replace(cfg, model=replace(cfg.model, dropout=0.0)), seed=cfg.train.seed)
    loss_fn = _loss(manifest, cfg)

    def sq_norm(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(tf.constant(yb), model(tf.constant(xb), training=False))
        grads = tape.gradient(loss, model.trainable_variables)
        return float(sum(tf.reduce_sum(g * g) for g in grads if g is not None))

    rng = np.random.default_rng(0)
    g_small = np.mean([sq_norm(*(a[idx] for a in (sample["x"], sample["y"])))
                       for idx in (rng.choice(len(sample["x"]), small, replace=False) for _ in range(repeats * 4))])
    g_big = np.mean([sq_norm(*(a[idx] for a in (sample["x"], sample["y"])))
                     for idx in (rng.choice(len(sample["x"]), min(big, len(sample["x"])), replace=False)
                                 for _ in range(repeats))])
    g2 = (big * g_big - small * g_small) / (big - small)
    trace = (g_small - g_big) / (1 / small - 1 / big)
    return float(trace / g2) if g2 > 0 else math.inf


def check_batch(manifest, cfg, sample, global_batch: int) -> Verdict:
    steps = manifest.windows("train") // global_batch
    noise = gradient_noise_scale(manifest, cfg, sample)
    evidence = (f"global batch {global_batch}: {steps} steps per epoch over {manifest.windows('train'):,} train "
                f"windows; gradient noise scale at initialization ~{noise:.0f}")
    if steps < 10:
        return Verdict("batch", FAIL, evidence + " -- too few steps per epoch to learn or to early-stop sensibly",
                       f"use a global batch of at most {max(1, manifest.windows('train') // 50)} (--global-batch-size) "
                       "or more data")
    if math.isfinite(noise) and global_batch > 20 * max(noise, 1):
        return Verdict("batch", WARN, evidence + " -- the batch is far above the noise scale: bigger batches "
                       "add little per step", f"a global batch near {max(8, int(noise)):d}-{max(16, int(4 * noise)):d} "
                       "uses the data better; more replicas then need a larger dataset")
    if math.isfinite(noise) and global_batch < noise / 20:
        return Verdict("batch", WARN, evidence + " -- the batch is far below the noise scale: gradients are "
                       "mostly noise", f"raise the global batch toward {int(noise)}")
    return Verdict("batch", PASS, evidence)


# ------------------------------------------------------------------ CLI


def run_checks(cfg, *, raw: list[str] | None, out_dir: str, sample_size: int = 4096,
               only: tuple[str, ...] = ()) -> list[Verdict]:
    import tensorflow as tf

    from training.config import batch_sizes
    from training.data import load_manifest, sample_windows
    from training.schedule import default_rule, scale_lr

    tf.keras.utils.set_random_seed(cfg.train.seed)
    manifest = load_manifest(cfg.data.data)
    sample = sample_windows(manifest, cfg.data.data, n=sample_size, seed=cfg.train.seed, with_ids=True)
    replicas = int(os.environ.get("SEQSCALE_DOCTOR_REPLICAS", "1"))
    _, global_batch = batch_sizes(cfg.train, replicas)
    rule = default_rule(cfg.train.optimizer) if cfg.train.lr_scaling == "auto" else cfg.train.lr_scaling
    peak = scale_lr(cfg.train.base_lr, global_batch, cfg.train.reference_batch, rule)
    tf.io.gfile.makedirs(out_dir)
    checks = {
        "scaling": lambda: check_scaling(manifest, sample),
        "windows": lambda: check_windows(manifest, sample, raw),
        "capacity": lambda: check_capacity(manifest, cfg, sample),
        "head": lambda: check_head(manifest, cfg, sample),
        "lr": lambda: check_lr(manifest, cfg, sample, peak, global_batch, posixpath.join(out_dir, "lr_range.png")),
        "batch": lambda: check_batch(manifest, cfg, sample, global_batch),
    }
    verdicts = []
    head_ok = True
    for name, fn in checks.items():
        if only and name not in only:
            continue
        if name in ("capacity", "lr", "batch") and not head_ok:
            verdicts.append(Verdict(name, WARN, "skipped: the head does not fit the target", "fix 'head' first"))
            continue
        v = fn()
        if name == "head" and v.status == FAIL:
            head_ok = False
        verdicts.append(v)
    with tf.io.gfile.GFile(posixpath.join(out_dir, "doctor.json"), "w") as f:
        json.dump([asdict(v) for v in verdicts], f, indent=2)
    return verdicts


def format_verdicts(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(f"[{v.status}] {v.check}: {v.evidence}")
        if v.fix and v.status != PASS:
            lines.append(f"       fix: {v.fix}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from training.config import build_parser, resolve

    parser = build_parser()
    parser.prog = "seqscale-doctor"
    parser.description = __doc__.split("\n\n")[0]
    parser.add_argument("--raw", action="append", help="the raw input files (glob) the dataset was built from")
    parser.add_argument("--out", default="doctor-out", help="where lr_range.png and doctor.json go")
    parser.add_argument("--sample", type=int, default=4096, help="windows sampled from train (default 4096)")
    parser.add_argument("--only", help="comma-separated subset of checks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.job_dir:
        args.job_dir = args.out
    from training.train import load_config_file

    cfg = resolve(args, load_config_file(args.config) if args.config else None)
    raw = None
    if args.raw:
        import glob

        raw = sorted(p for pattern in args.raw for p in glob.glob(pattern)) or None
    verdicts = run_checks(cfg, raw=raw, out_dir=args.out, sample_size=args.sample,
                          only=tuple(args.only.split(",")) if args.only else ())
    print(format_verdicts(verdicts))
    print(f"plots and doctor.json: {args.out}")
    return 1 if any(v.status == FAIL for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
