"""Doctor checks on the data alone: scaling, windows against the raw rows, learnability.

Numpy and pyarrow on a sample of training windows; no model, no TensorFlow ops.
"""

from __future__ import annotations

from training.doctor.verdict import FAIL, PASS, WARN, Verdict

# ------------------------------------------------------------------ 1. scaling


def check_scaling(manifest, sample) -> Verdict:
    import numpy as np

    problems, evidence = [], []
    bad_values = non_finite(manifest, sample)
    if bad_values:
        return Verdict("scaling", FAIL, bad_values,
                       "the shards hold NaN or inf (they were not written by a checked seqscale job, or a column "
                       "overflowed float32): rerun preprocessing, which refuses such rows by name (--nan-policy "
                       "fail), or drops/fills them (--nan-policy drop|ffill), and scale large columns")
    flat = [c for c in manifest.targets if manifest.column(c).std == 0] if manifest.task == "regression" else []
    if flat:  # left unscaled (--unscaled) past preprocessing's own refusal: no scaling cures it
        return Verdict("scaling", FAIL, f"the target does not vary: {', '.join(repr(c) for c in flat)} is "
                       f"{manifest.column(flat[0]).mean:g} on every training row, so there is nothing to forecast",
                       "check that --targets names the intended column and that the training range "
                       "(--train-fraction, --val-start) covers a time it changes; then rerun preprocessing")
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
    # calendar sin/cos are unscaled by design, in [-1, 1] (a short training range: calendar_note)
    keep = np.array([n not in manifest.spec.calendar_columns for n in names])
    names, mean, std = [n for n, k in zip(names, keep, strict=True) if k], mean[keep], std[keep]
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
    how = f"{manifest.scaler} scaling ({manifest.scale_by}) from {train_rows} training rows; "
    short = calendar_note(manifest)
    if short:
        return Verdict("scaling", WARN, short + " | " + how + "; ".join(evidence),
                       "drop those parts from --calendar (or train on at least one full cycle of them) and rerun "
                       "preprocessing")
    levels = series_levels(manifest, sample)
    if levels:
        return Verdict("scaling", WARN, levels + " | " + how + "; ".join(evidence),
                       "rerun preprocessing with --scale-by series: each series is then scaled with its own "
                       "training statistics, and the evaluation and export undo it per series")
    return Verdict("scaling", PASS, how + "; ".join(evidence))


def calendar_note(manifest) -> str:
    """'' or which --calendar parts the training range does not cover one full cycle of."""
    from contract.calendar import coverage_note

    if manifest.time_kind != "timestamp":
        return ""
    short = coverage_note(manifest.calendar, manifest.split_boundaries.val_start - manifest.time_range[0])
    return (short + ": validation and test hold calendar phases the model never saw in training (it must "
            "extrapolate those sin/cos values)") if short else ""


SERIES_SHARE = 0.8  # series levels explaining more of a column's variance call for per-series scaling


def series_levels(manifest, sample) -> str:
    """'' or which columns are mostly their series' level under global scaling (then each series
    moves in a narrow band of the scaled range and the biggest series dominate the loss)."""
    import numpy as np

    if manifest.scale_by != "global" or not manifest.series_column or "sid" not in sample:
        return ""
    sid = np.asarray(sample["sid"])
    ids, inverse = np.unique(sid, return_inverse=True)
    if len(ids) < 2:
        return ""
    last = np.asarray(sample["x"])[:, -1, :].astype(np.float64)
    names = list(manifest.features)
    outside = [j for j, t in enumerate(manifest.targets) if t not in manifest.features]
    if manifest.task == "regression" and outside:
        y = np.asarray(sample["y"], dtype=np.float64).reshape(len(sid), -1)[:, -len(manifest.targets):]
        last = np.column_stack([last, y[:, outside]])
        names += [f"target {manifest.targets[j]}" for j in outside]
    out = []
    for j, name in enumerate(names):
        if name in manifest.spec.calendar_columns:
            continue
        v = last[:, j]
        means = np.bincount(inverse, weights=v) / np.bincount(inverse)
        total = v.var()
        share = float(np.mean((means[inverse] - v.mean()) ** 2) / total) if total > 0 else 0.0
        if share > SERIES_SHARE:
            out.append(f"{name} ({share:.0%}; series means span {np.ptp(means) / np.sqrt(total):.1f} global stds)")
    if not out:
        return ""
    return (f"the series' levels explain most of the variance of {', '.join(out)} across {len(ids)} series: "
            "under one global scaling each series moves in a narrow band and the largest dominate the loss")


def non_finite(manifest, sample) -> str:
    """'' or which columns of how many sampled windows hold NaN/inf (inputs and targets)."""
    import numpy as np

    x, y = np.asarray(sample["x"]), np.asarray(sample["y"], dtype=np.float64)
    bad_x = ~np.isfinite(x)
    bad_y = ~np.isfinite(y.reshape(len(y), -1))
    if not bad_x.any() and not bad_y.any():
        return ""
    cols = [f for f, b in zip(manifest.features, bad_x.any(axis=(0, 1)), strict=True) if b]
    cols += [f"target {t}" for t, b in zip(manifest.targets * (bad_y.shape[1] // len(manifest.targets)),
                                          bad_y.any(axis=0), strict=True) if b]
    windows = int((bad_x.any(axis=(1, 2)) | bad_y.any(axis=1)).sum())
    return (f"{windows} of {len(x)} sampled windows hold NaN/inf values, in {', '.join(dict.fromkeys(cols))}: "
            "the loss becomes NaN at the first such batch whatever the learning rate")


# ------------------------------------------------------------------ 2. windows


def check_windows(manifest, sample, raw: list[str] | None = None, n: int = 64, series=None) -> Verdict:

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
        checked, mismatched, missing = _compare_with_raw(manifest, sample, raw, n, series)
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


def read_raw(manifest, raw: list[str], columns: list[str]):
    """(table of the columns, times as int64 ns or integers, series keys as str) from the raw files.

    Calendar columns are not in the files: they are computed from the times.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    from contract import calendar

    derived = [c for c in dict.fromkeys(columns) if c in manifest.spec.calendar_columns]
    cols = [manifest.time_column, *([manifest.series_column] if manifest.series_column else []),
            *(c for c in dict.fromkeys(columns) if c not in derived)]
    fmt = "parquet" if raw[0].lower().endswith((".parquet", ".pq")) else "csv"
    table = pads.dataset(raw, format=fmt).to_table(columns=cols)
    tcol = table.column(manifest.time_column)
    if manifest.time_kind == "timestamp":
        tcol = pc.cast(tcol, pa.timestamp("ns"))
    times = tcol.cast(pa.int64()).to_numpy()
    if derived:  # calendar columns: computed from the time, as the job did
        every = dict(zip(manifest.spec.calendar_columns, calendar.matrix(times, manifest.calendar).T, strict=True))
        for c in derived:
            table = table.append_column(c, pa.array(every[c]))
    keys = (np.array([str(k) for k in table.column(manifest.series_column).to_pylist()])
            if manifest.series_column else np.full(len(times), ""))
    return table, times, keys


def step_look_back(manifest) -> int | None:
    """The look-back that reaches a season back from the last input, the season taken from the
    data's time step (a day of hourly rows); None when the step names no season."""
    from evaluation.metrics import season_length
    from training.doctor.seasonality import look_back_for

    season = season_length(manifest.time_kind, manifest.step)
    return look_back_for(season) if season else None


def season_note(manifest, raw: list[str]) -> tuple[str, int | None]:
    """(evidence, suggested look-back or None) from the target's autocorrelation on the training rows."""
    import numpy as np

    from training.doctor.seasonality import autocorrelation, dominant_season, look_back_for

    target = manifest.targets[0]
    table, times, keys = read_raw(manifest, raw, [target])
    values = table.column(target).to_numpy(zero_copy_only=False).astype(np.float64)
    train = times < manifest.split_boundaries.val_start
    series = []
    for k in np.unique(keys[train]):
        rows = np.flatnonzero(train & (keys == k))
        series.append(values[rows[np.argsort(times[rows], kind="stable")]])
    L = manifest.window.look_back
    longest = max((len(s) for s in series), default=0)
    max_lag = min(max(3 * L, 400), longest // 3)
    found = dominant_season(autocorrelation(series, max_lag)) if max_lag > 2 else None
    if found is None:
        return f"no season in the target's autocorrelation up to lag {max_lag} on the training rows", None
    lag, r = found
    need = look_back_for(lag)
    if need > L:
        return (f"the target repeats every {lag} rows (autocorrelation {r:.2f} on the training rows) but the "
                f"look-back {L} does not reach a season before the last input (needs {need}, so the window holds "
                f"the change the target made a season earlier)"), need
    return f"the look-back {L} reaches the target's season ({lag} rows, autocorrelation {r:.2f})", None


def _compare_with_raw(manifest, sample, raw: list[str], n: int, series=None) -> tuple[int, int, int]:
    """(windows checked, windows that differ, windows whose rows were not found); `series` is the
    per-series scaling table of a --scale-by series dataset."""
    import numpy as np

    from contract.records import series_id

    table, times, keys = read_raw(manifest, raw, list(manifest.features) + list(manifest.targets))
    sids = {k: series_id(k) for k in np.unique(keys)}
    sid_rows = np.array([sids[k] for k in keys])

    def scaled(names):
        values = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64) for c in names])
        if series is None:
            return (values - [manifest.column(c).center for c in names]) / [manifest.column(c).scale for c in names]
        center, scale = series.gather(series.rows_of_names(keys), names)
        return (values - center) / scale

    feat = scaled(manifest.features)
    if manifest.task == "regression":
        targ = scaled(manifest.targets)
    else:
        targ = np.column_stack([table.column(c).to_numpy(zero_copy_only=False).astype(np.float64)
                                for c in manifest.targets])
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


# ------------------------------------------------------------------ 3. learnability


def check_learnability(manifest, sample, seed: int = 0, raw: list[str] | None = None) -> Verdict:
    """Nothing to learn (no baseline beats the mean) or too good (one input column is the target);
    with the raw rows, whether the look-back reaches the target's season."""
    from training.doctor.learnability import LEAK_R2, NOTHING_R2, compare_baselines

    b = compare_baselines(sample["x"], sample["y"], sample["t"], features=list(manifest.features),
                          targets=list(manifest.targets), task=manifest.task, num_classes=manifest.num_classes,
                          sid=sample.get("sid") if manifest.series_column else None, seed=seed)
    names = [k for k in ("persistence", "linear", "features") if k in b.mse]
    scores = ", ".join(f"{k} {b.mse[k]:.3g} (R\u00b2 {b.r2(k):+.3f})" for k in names)
    evidence = (f"held-out error on the latest {b.holdout} sampled windows: predicting the train mean "
                f"{b.mse['mean']:.3g}, {scores}")
    col, target = b.best_column, ", ".join(manifest.targets)
    if col is not None and col.r2 > LEAK_R2 and not col.is_persistence:
        where = "the last input row" if col.lag == 0 else f"{col.lag} row{'s' if col.lag > 1 else ''} before the last input row"
        return Verdict("learnability", FAIL,
                       f"too good to be true: input column {col.name!r} at {where} alone predicts the target "
                       f"{target!r} with R\u00b2 {col.r2:.6f}: the target leaked into the inputs (a column holding "
                       f"future values), and a model trained on it fails where that column is not known | {evidence}",
                       f"drop {col.name!r} from --features, or shift it so each row holds only what is known at its "
                       "time, and rerun preprocessing")
    if col is not None and col.r2 > LEAK_R2:
        return Verdict("learnability", WARN,
                       f"too easy: the target barely changes over the horizon: its own last input value explains "
                       f"R\u00b2 {col.r2:.6f} of it; a low loss will only mean persistence | {evidence}",
                       "forecast further ahead (--horizon), or predict the change instead of the level")
    best = b.best
    if b.r2(best) < NOTHING_R2:
        return Verdict("learnability", FAIL,
                       f"nothing to learn: no predictor beats predicting the train mean on held-out windows (best: "
                       f"{best}, R\u00b2 {b.r2(best):+.3f}); the targets look unrelated to their inputs, and no model, "
                       f"learning rate or batch size changes that | {evidence}",
                       "check --targets and --features name the intended columns, that the target is aligned with its "
                       "inputs (time column, sort order, --horizon) and is not noise or shuffled")
    evidence += f"; a healthy model's validation loss should beat {best} ({b.mse[best]:.3g})"
    note, look_back = season_note(manifest, raw) if raw else ("", None)
    if manifest.window.look_back < 2:  # the cause a capacity FAIL would show next, and units do not cure
        need = look_back or step_look_back(manifest)
        return Verdict("learnability", FAIL,
                       f"look-back {manifest.window.look_back}: each window holds one row, so the LSTM has no "
                       f"sequence to read and no history to tell apart windows that end alike (a model this short "
                       f"cannot even memorize a batch, whatever its units) | {evidence}" + (f"; {note}" if note else ""),
                       f"rerun preprocessing with --look-back {need or 'of a season or more'}"
                       + (" (one season of the data's time step)" if need and not look_back else "")
                       + "; more units do not cure it")
    if raw:
        evidence += f"; {note}"
        if look_back:
            return Verdict("learnability", WARN, evidence,
                           f"rerun preprocessing with --look-back {look_back} (or more) so each window holds the "
                           "same time one season before its target")
    return Verdict("learnability", PASS, evidence)
