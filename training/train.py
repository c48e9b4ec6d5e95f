"""The training run as a short sequence of named steps.

cluster -> strategy -> manifest -> LR plan -> tf.data -> model -> callbacks -> fit -> reports.
The strategy is created before any other TensorFlow op (MultiWorkerMirroredStrategy
must see TF_CONFIG before TensorFlow initializes its runtime). Every worker takes the
same number of steps per epoch (from the manifest), validation loss is all-reduced so
early stopping ends every worker in the same epoch, and only the chief writes the
export, plots and reports; the others write to scratch paths that are removed.
"""

from __future__ import annotations

import json
import logging
import posixpath
import sys
import time
from dataclasses import dataclass, replace

from training import cluster as cluster_lib
from training.config import Config, ConfigError, build_parser, load_config_file, resolve
from training.lr_plan import LRPlan, lowered_default_note, plan_lr

log = logging.getLogger("seqscale.train")


GUARD_SAMPLE = 2048  # windows per split behind the anchor decision and the guard's levels


@dataclass
class Run:
    """What the steps of one run share."""

    cfg: Config
    argv: list[str] | None
    cluster: cluster_lib.Cluster
    strategy: object
    manifest: object = None
    plan: LRPlan | None = None
    val_steps: int = 0
    member: bool = False  # one of --members N: the ensemble's mean is checked for coverage, not each member
    _train_sample: dict | None = None

    def train_sample(self) -> dict:
        """The fixed sample of training windows the anchor decision and the guard's levels read
        (read once; the same windows on every worker)."""
        if self._train_sample is None:
            from training import data as data_lib

            self._train_sample = data_lib.sample_windows(self.manifest, self.cfg.data.data, n=GUARD_SAMPLE)
        return self._train_sample

    @property
    def job_dir(self) -> str:
        return self.cfg.runtime.job_dir

    def path(self, *parts: str) -> str:
        return posixpath.join(self.job_dir, *parts)


def run(argv: list[str] | None = None) -> dict:
    """Train as configured by `argv`; returns a summary dict (also logged)."""
    started = time.time()
    r = start(argv)
    if r.cfg.train.members is None:
        r.cfg = decide_members(r.cfg)
    if r.cfg.train.members > 1:
        return train_members(r, started)
    return train_one(r, started)


def decide_members(cfg: Config) -> Config:
    """cfg with --members auto decided from the train split's window count (the manifest's, the same
    on every worker), logged with the way to choose otherwise."""
    from training.config import AUTO_MEMBERS, AUTO_MEMBERS_MAX_TRAIN_WINDOWS, default_members
    from training.data import load_manifest

    windows = load_manifest(cfg.data.data).windows("train")
    n = default_members(windows)
    if n > 1:
        log.info("--members auto: an ensemble of %d networks (seeds %d..%d), as the %s train windows are at most %s; "
                 "--members 1 trains one", n, cfg.train.seed, cfg.train.seed + n - 1, f"{windows:,}",
                 f"{AUTO_MEMBERS_MAX_TRAIN_WINDOWS:,}")
    else:
        log.info("--members auto: one network, as the %s train windows are over %s; --members %d trains an ensemble "
                 "(seeds averaged: a few percent lower error for %dx the time)", f"{windows:,}",
                 f"{AUTO_MEMBERS_MAX_TRAIN_WINDOWS:,}", AUTO_MEMBERS, AUTO_MEMBERS)
    return replace(cfg, train=replace(cfg.train, members=n))


def train_one(r: Run, started: float) -> dict:
    """One network: data, inputs, model, callbacks, fit, reports."""
    load_data(r)
    train_ds, val_ds = make_inputs(r)
    model, factor = compile_model(r)
    callbacks, guard, history = make_callbacks(r, model, factor)
    model.fit(train_ds, epochs=r.cfg.train.epochs, steps_per_epoch=r.plan.steps_per_epoch, validation_data=val_ds,
              validation_steps=r.val_steps or None, callbacks=callbacks, verbose=keras_verbosity(r.cfg.runtime.verbose))
    return finish(r, model, guard, history, started)


MEMBER_DONE = "member.json"  # the chief's last word on a member: its summary, after its export


def member_run(r: Run, k: int) -> Run:
    """Member k: the run's config with seed + k, in <job_dir>/member-<k>, on the same cluster and strategy."""
    t, rt = r.cfg.train, r.cfg.runtime
    cfg = replace(r.cfg, train=replace(t, seed=t.seed + k, members=1),  # the mean is calibrated, not each member
                  runtime=replace(rt, job_dir=posixpath.join(rt.job_dir, f"member-{k}"), calibrate=False))
    return Run(cfg=cfg, argv=r.argv, cluster=r.cluster, strategy=r.strategy, member=True)


def train_members(r: Run, started: float) -> dict:
    """--members N: N whole runs one after the other (seeds seed..seed+N-1), then their mean as the
    export and eval.json of the job dir (training/ensemble.py, what seqscale-ensemble writes).

    A restarted job skips the members the chief finished (their member.json, written after their
    export): every worker reads the same file before its first collective, so all skip the same
    members; the member in progress resumes from its own backup.
    """
    import tensorflow as tf

    from training import jobdir

    n = r.cfg.train.members
    summaries = []
    for k in range(n):
        m = member_run(r, k)
        done = jobdir.read_json(m.path(MEMBER_DONE))
        if done is not None:
            log.info("member %d of %d (seed %d): already trained, skipped", k + 1, n, m.cfg.train.seed)
            summaries.append(done)
            continue
        log.info("member %d of %d (seed %d) in %s", k + 1, n, m.cfg.train.seed, m.job_dir)
        jobdir.preflight(m.job_dir, r.cluster, r.cfg.runtime.min_free_disk_mb)
        tf.keras.backend.clear_session()  # each member builds the same layer names, as a run of its own
        tf.keras.utils.set_random_seed(m.cfg.train.seed)
        summary = without_eval(train_one(m, time.time()))  # its eval.json holds the report
        if r.cluster.is_chief:
            jobdir.write_atomic(m.path(MEMBER_DONE), json.dumps(summary))
        summaries.append(summary)
    out = {"members": summaries, "seconds": round(time.time() - started, 1)}
    if r.cluster.is_chief:
        out.update(ensemble_reports(r, [member_run(r, k).job_dir for k in range(n)]))
        jobdir.write_atomic(r.path("members.json"), json.dumps(without_eval(out), indent=2))
    log.info("done: %d members, %.0f s", n, out["seconds"])
    return out


def without_eval(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "eval"}


def ensemble_reports(r: Run, dirs: list[str]) -> dict:
    """Chief: the members' mean as <job_dir>/export, eval.json and config.json (with the member dirs)."""
    from training import jobdir
    from training.data import load_manifest
    from training.ensemble import load_members, members_line, write_ensemble
    from training.evaluate import format_table

    manifest = load_manifest(r.cfg.data.data)
    members = load_members(dirs, manifest)  # once: for the validation loss and the export
    out = {}
    if manifest.task == "regression" and manifest.windows("val"):
        out["val_loss"] = ensemble_val_loss(members, manifest, r.cfg.data.data, r.cfg.model.quantiles)
    ran = json.loads(r.cfg.to_json())
    ran["members"] = [jobdir.read_json(posixpath.join(d, "config.json")) for d in dirs]
    resolved = json.dumps(ran, indent=2)
    report = write_ensemble(dirs, manifest, r.cfg.data.data, r.job_dir, season=r.cfg.runtime.season,
                            evaluate=r.cfg.runtime.evaluate, config_json=resolved, members=members,
                            calibrate=r.cfg.runtime.calibrate)
    jobdir.write_atomic(r.path("config.json"), resolved)
    if report is None:
        return out
    print(format_table(report), flush=True)
    if line := members_line(report):
        print(line, flush=True)
    return {**out, "eval": report}


def ensemble_val_loss(members, manifest, data: str, levels=()) -> dict:
    """The members' and their mean's validation loss (MSE, scaled units, over every validation
    window; of the point forecast for quantile members), logged: what the ensemble gains over a
    single network, without reading the test split."""
    from training.ensemble import validation_mse

    members, mean = validation_mse(members, manifest, data, levels=levels)
    avg = sum(members) / len(members)
    log.info("validation %s: members %s (mean %.5g); the ensemble's %.5g (%.3fx)",
             "MSE of the point forecast" if len(levels) else "loss", ", ".join(f"{v:.5g}" for v in members), avg,
             mean, mean / avg)
    return {"members": members, "ensemble": mean}


def keras_verbosity(choice: str) -> int:
    """1 (progress bar) on a terminal, 2 (one line per epoch) in pods and log files."""
    return 1 if choice == "bar" or (choice == "auto" and sys.stdout.isatty()) else 2


def start(argv: list[str] | None) -> Run:
    """Config, cluster and strategy (the first TF op), then the runtime checks."""
    args = build_parser().parse_args(argv)
    cfg = resolve(args, load_config_file(args.config) if args.config else None, source=args.config or "")
    rt = cfg.runtime
    cluster = cluster_lib.resolve(num_workers=rt.num_workers, host_pattern=rt.host_pattern, base_port=rt.base_port)
    strategy = cluster_lib.make_strategy(cluster, rt.startup_timeout)

    import tensorflow as tf

    from training import ensure_keras2, jobdir

    ensure_keras2()
    jobdir.preflight(rt.job_dir, cluster, rt.min_free_disk_mb)
    tf.keras.utils.set_random_seed(cfg.train.seed)
    if cfg.train.mixed_precision:
        if not tf.config.list_physical_devices("GPU"):
            log.warning("--mixed-precision without a GPU: float16 on CPU is slow; it is meant for GPUs")
        tf.keras.mixed_precision.set_global_policy("mixed_float16")
    return Run(cfg=cfg, argv=argv, cluster=cluster, strategy=strategy)


def load_data(r: Run) -> None:
    """The verified manifest, the LR plan and the validation steps, logged once."""
    from training import data as data_lib

    r.manifest = data_lib.load_manifest(r.cfg.data.data)
    data_lib.verify_shards(r.manifest, r.cfg.data.data, hashes=r.cfg.data.verify_hashes)
    if r.cfg.model.anchor == "auto":
        r.cfg = decide_anchor(r.cfg, r.manifest, r.train_sample(), log=log)
    r.plan = plan_lr(r.cfg.train, r.strategy.num_replicas_in_sync, r.manifest.windows("train"))
    r.val_steps = data_lib.steps_per_epoch(r.manifest, r.plan.global_batch).val
    c = r.cluster
    log.info("worker %d of %d (%s); %d validation steps", c.index, c.num_workers,
             "chief" if c.is_chief else "worker", r.val_steps)
    log.info("plan: %s", r.plan.describe())
    note = lowered_default_note(r.cfg.train, r.plan, r.manifest.windows("train"))
    if note:
        log.info("%s", note)
    if not r.val_steps:
        log.warning("the val split has no windows: no validation, no early stopping")


def decide_anchor(cfg: Config, manifest, sample: dict | None = None, log=None) -> Config:
    """cfg with --anchor auto decided (training.model.choose_anchor) on the fixed sample of
    training windows (`sample`, read here when not given): the same on every worker, and in the
    doctor; the decision and its evidence logged to `log` when given."""
    from training import data as data_lib
    from training.model import choose_anchor

    if cfg.model.anchor != "auto":
        return cfg
    if sample is None:
        sample = data_lib.sample_windows(manifest, cfg.data.data, n=GUARD_SAMPLE)
    model, evidence = choose_anchor(manifest, cfg.model, sample["x"], sample["y"])
    if log is not None:
        log.info("%s", evidence.describe(model.anchor) if evidence else f"--anchor auto: {model.anchor}")
    return replace(cfg, model=model)


def make_inputs(r: Run):
    """Distributed train (repeating) and validation (fixed) datasets."""
    import tensorflow as tf

    from training import data as data_lib

    d, gb, seed = r.cfg.data, r.plan.global_batch, r.cfg.train.seed

    def train_input(ctx: tf.distribute.InputContext):
        ds = data_lib.read_windows(r.manifest, d.data, "train", shuffle=d.shuffle, seed=seed,
                                   shuffle_buffer=d.shuffle_buffer, cycle_length=d.cycle_length,
                                   input_context=ctx, policy=d.shard_policy)
        return data_lib.batched(ds, ctx.get_per_replica_batch_size(gb), repeat=True)

    def val_input(ctx: tf.distribute.InputContext):
        return data_lib.eval_batches(r.manifest, d.data, "val", ctx.get_per_replica_batch_size(gb),
                                     steps=r.val_steps, input_context=ctx)

    train_ds = r.strategy.distribute_datasets_from_function(train_input)
    val_ds = r.strategy.distribute_datasets_from_function(val_input) if r.val_steps else None
    return train_ds, val_ds


def make_optimizer(cfg: Config, schedule, levels_apart: bool = False, steps_per_epoch: int = 1):
    """The optimizer; `levels_apart` (a mean head): the levels' weights clipped apart (clipped_apart).

    With --ema, Keras keeps the weights' moving average and writes it into the weights every
    `steps_per_epoch` steps, i.e. at each epoch's last step (every epoch has the same steps), so
    validation and early stopping judge the averaged weights and training goes on from them.
    """
    import tensorflow as tf

    from training.quantiles import clipped_apart

    t = cfg.train
    clip = {"global_clipnorm": t.clipnorm} if t.clipnorm else {}
    kinds = {"adam": (tf.keras.optimizers.Adam, {}),
             "adamw": (tf.keras.optimizers.AdamW, {"weight_decay": t.weight_decay}),
             "sgd": (tf.keras.optimizers.SGD, {"momentum": t.momentum})}
    if t.optimizer not in kinds:
        raise ConfigError(f"unknown optimizer {t.optimizer!r}")
    cls, extra = kinds[t.optimizer]
    if t.ema:
        extra = {**extra, "use_ema": True, "ema_momentum": t.ema, "ema_overwrite_frequency": max(1, int(steps_per_epoch))}
    return (clipped_apart(cls) if levels_apart else cls)(learning_rate=schedule, **extra, **clip)


def compile_model(r: Run):
    """The model under the strategy, compiled with the planned schedule; (model, plateau factor)."""
    import tensorflow as tf

    from evaluation.quantiles import mean_head, point_index
    from training.model import build_model, make_loss, resolve_head
    from training.quantiles import point_mae, point_mse
    from training.schedule import WarmupSchedule

    head = resolve_head(r.manifest, r.cfg.model)
    with r.strategy.scope():
        model = build_model(r.manifest, r.cfg.model, seed=r.cfg.train.seed, mixed_precision=r.cfg.train.mixed_precision)
        factor = tf.Variable(1.0, trainable=False, name="lr_plateau_factor") if r.plan.plateau else None
        metrics = ["mae"] if r.manifest.task == "regression" else ["accuracy"]
        if head.quantiles:  # the point forecast's MAE, under the usual name (history, plots)
            metrics = [point_mae(point_index(head.quantiles))]
            if mean_head(head.quantiles):  # what stops the run (stop_monitor)
                metrics.append(point_mse(point_index(head.quantiles)))
        # weighted: validation batches carry weights (0 for padding) so every window counts once
        model.compile(optimizer=make_optimizer(r.cfg, WarmupSchedule.from_plan(r.plan, factor),
                                               levels_apart=mean_head(head.quantiles),
                                               steps_per_epoch=r.plan.steps_per_epoch),
                      loss=make_loss(head), weighted_metrics=metrics,
                      steps_per_execution=r.cfg.train.steps_per_execution)
    return model, factor


def make_callbacks(r: Run, model, factor):
    """Persisted early stopping and plateau, the guard, TensorBoard, history.json, then the backup.

    Order matters for a crash at the end of an epoch: every per-epoch file (state,
    history) is written before BackupAndRestore records the epoch as done, so a restart
    never resumes past an epoch whose state was not saved (it re-runs that epoch instead).
    """
    import tensorflow as tf

    from training import callbacks as cb
    from training import state
    from training.model import resolve_head
    from training.quantiles import stop_monitor

    t, chief = r.cfg.train, r.cluster.is_chief
    state_dir = r.path("backup", "seqscale_state")
    callbacks = [cb.LearningRateLogger(), cb.EpochTimer()]
    monitor = stop_monitor(resolve_head(r.manifest, r.cfg.model).quantiles)
    if r.val_steps and t.patience:
        callbacks.append(state.PersistentEarlyStopping(
            state.StateStore(state_dir, "early_stopping", writer=chief),
            monitor=monitor, patience=t.patience, min_delta=t.min_delta, restore_best_weights=True, verbose=1))
    if factor is not None and r.val_steps:
        callbacks.append(state.PlateauFactor(factor, state.StateStore(state_dir, "plateau", writer=chief),
                                             patience=t.plateau_patience, factor=t.plateau_factor, monitor=monitor))
    guard = make_guard(r)
    history = cb.HistoryWriter(r.path("history.json"), writer=chief)
    callbacks += [guard, tf.keras.callbacks.TensorBoard(cluster_lib.write_path(r.job_dir, r.cluster, "logs"),
                                                        profile_batch=0), history,
                  tf.keras.callbacks.BackupAndRestore(r.path("backup"))]
    return callbacks, guard, history


def make_guard(r: Run):
    """The loss guard with its mean levels: the train mean's loss on train and on validation windows."""
    import numpy as np

    from evaluation.quantiles import point_index
    from training import data as data_lib
    from training.guard import FlatLossGuard, mean_prediction, naive_predictions
    from training.model import make_loss, resolve_head

    sample = r.train_sample()
    head = resolve_head(r.manifest, r.cfg.model)
    loss = make_loss(head)
    y = sample["y"]

    def naive_loss(w):  # the best naive forecast's: repeating or extending the target's last value
        preds = naive_predictions(r.manifest, w["x"], w["y"].shape, head.quantiles)
        return min((float(loss(w["y"], p)) for p in preds), default=None)

    val_baseline = val_naive = None
    if r.val_steps:
        val = data_lib.sample_windows(r.manifest, r.cfg.data.data, split="val", n=GUARD_SAMPLE)
        val_baseline = float(loss(val["y"], mean_prediction(r.manifest, y, len(val["y"]), head.quantiles)))
        val_naive = naive_loss(val)
    t = r.cfg.train
    return FlatLossGuard(
        baseline=float(loss(y, mean_prediction(r.manifest, y, len(y), head.quantiles))), val_baseline=val_baseline,
        point=point_index(head.quantiles) if head.quantiles else None, absolute=head.loss in ("mae", "pinball"),
        sample_x=sample["x"][:256], target_mean=float(np.mean(y)), target_std=float(np.std(y)),
        steps_per_epoch=r.plan.steps_per_epoch, features=tuple(r.manifest.features),
        doctor_cmd=f"seqscale-doctor --data {r.cfg.data.data} " + " ".join(argv_for_doctor(r.argv)),
        checkpoint_path=r.path("checkpoints", "last_good.npz"), writer=r.cluster.is_chief,
        patience=t.flat_patience, tolerance=t.flat_tolerance, naive=naive_loss(sample),
        val_naive=val_naive)


def finish(r: Run, model, guard, history, started: float) -> dict:
    """Chief: plots, export, config.json, evaluation; others: remove their scratch."""
    from training.errors import TrainingStopped
    from training.plots import plot_history

    epochs = history.epochs  # the chief's list is what history.json holds (read at start, appended since)
    if guard.reason is not None:
        if r.cluster.is_chief and epochs:
            plot_history(epochs, r.path("loss.png"))
        raise TrainingStopped(guard.reason)
    summary = {"epochs_run": len(epochs), "global_batch": r.plan.global_batch, "peak_lr": r.plan.peak_lr,
               "final": epochs[-1] if epochs else {}, "seconds": round(time.time() - started, 1)}
    if guard.warnings:
        summary["warnings"] = guard.warnings
    if r.cluster.is_chief:
        summary.update(chief_reports(r, model))
        plot_history(epochs, r.path("loss.png"))  # last: a picture never costs the export
    else:
        remove_scratch(r)
    log.info("done: %s", json.dumps({k: v for k, v in summary.items() if k != "eval"}))
    return summary


def chief_reports(r: Run, model) -> dict:
    """Export (raw windows in, original units out), config.json with the plan, eval.json."""
    import tensorflow as tf

    from evaluation import report as er
    from evaluation.quantiles import point_level
    from training import calibration as cal
    from training.evaluate import evaluation_plan, format_table, write_report
    from training.export import export, load_series_scaling
    from training.model import build_model, resolve_anchor, uses_linear_skip

    plain = build_model(r.manifest, r.cfg.model, seed=r.cfg.train.seed)  # outside the strategy
    plain.set_weights(model.get_weights())
    ran = json.loads(r.cfg.to_json())
    ran["model"]["linear_skip"] = uses_linear_skip(r.manifest, r.cfg.model)  # what ran, not "None: by the data"
    ran["model"]["anchor"] = resolve_anchor(r.manifest, r.cfg.model)  # likewise, not "auto"
    if r.cfg.model.quantiles:  # which level the point forecast (`predictions`, eval.json's RMSE) is
        ran["model"]["point_level"] = point_level(r.cfg.model.quantiles)
    resolved = json.dumps({**ran, "lr_plan": r.plan.to_dict()}, indent=2)
    series = load_series_scaling(r.manifest, r.cfg.data.data)
    plan = evaluation_plan(r.manifest, r.cfg.data.data, series, season=r.cfg.runtime.season,
                           levels=r.cfg.model.quantiles)
    served, calibration = (plain, None) if r.member else cal.check(
        plain, r.manifest, r.cfg.data.data, r.cfg.model.quantiles, fix=r.cfg.runtime.calibrate)
    export(served, r.manifest, r.path("export"), config_json=resolved, series=series,
           evaluation=er.to_dict(plan, r.cfg.runtime.season), quantiles=r.cfg.model.quantiles)
    with tf.io.gfile.GFile(r.path("config.json"), "w") as f:
        f.write(resolved)
    out = {}
    if r.cfg.runtime.evaluate and r.manifest.windows("test"):
        report = cal.evaluate_served(served, plain, calibration, r.manifest, r.cfg.data.data,
                                     season=r.cfg.runtime.season, plan=plan, quantiles=r.cfg.model.quantiles)
        write_report(report, r.job_dir)
        out["eval"] = report
        print(format_table(report), flush=True)
    state_dir = r.path("backup", "seqscale_state")
    if tf.io.gfile.exists(state_dir):
        tf.io.gfile.rmtree(state_dir)
    _remove_if_empty(r.path("backup"))
    return out


def remove_scratch(r: Run) -> None:
    import tensorflow as tf

    scratch = cluster_lib.write_path(r.job_dir, r.cluster)
    if tf.io.gfile.exists(scratch):
        tf.io.gfile.rmtree(scratch)
    _remove_if_empty(posixpath.dirname(scratch))


def _remove_if_empty(path: str) -> None:
    import tensorflow as tf

    try:
        if tf.io.gfile.isdir(path) and not tf.io.gfile.listdir(path):
            tf.io.gfile.rmtree(path)
    except tf.errors.OpError:
        pass  # another worker got there first, or it is not empty after all


def argv_for_doctor(argv: list[str] | None) -> list[str]:
    """The model/optimization flags of this run, to repeat for the doctor."""
    args = list(sys.argv[1:] if argv is None else argv)
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("--data", "--job-dir"):
            skip = True
        elif not a.startswith(("--data=", "--job-dir=")):
            out.append(a)
    return out
