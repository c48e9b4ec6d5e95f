"""The training run: cluster -> strategy -> manifest -> tf.data -> model -> fit -> reports.

The strategy is created before any other TensorFlow op (MultiWorkerMirroredStrategy
must see TF_CONFIG before TensorFlow initializes its runtime). Every worker takes the
same number of steps per epoch (from the manifest), validation loss is all-reduced so
early stopping ends every worker in the same epoch, and only the chief writes the
export, plots and reports; the others write to scratch paths that are removed.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import time

from training import cluster as cluster_lib
from training.config import Config, ConfigError, batch_sizes, build_parser, resolve
from training.watchdog import Watchdog

log = logging.getLogger("seqscale.train")


def load_config_file(path: str) -> dict:
    import tensorflow as tf

    with tf.io.gfile.GFile(path) as f:
        text = f.read()
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)


def startup_message(cluster: cluster_lib.Cluster, seconds: int) -> str:
    peers = ", ".join(w for i, w in enumerate(cluster.workers) if i != cluster.index)
    return (f"seqscale-train: error: worker {cluster.index} ({cluster.workers[cluster.index]}) could not reach its "
            f"peers ({peers}) within {seconds} s. Check that all {cluster.num_workers} workers started, that "
            "TF_CONFIG / --host-pattern and ports are right, and that the workers can reach each other "
            "(--startup-timeout sets this limit)")


def make_strategy(cluster: cluster_lib.Cluster, startup_timeout: int = 300):
    """MWMS for a cluster (NCCL on GPUs, RING on CPU), Mirrored over >1 local GPU, else default.

    For a cluster, one all-reduce proves every worker is up before anything else runs;
    a watchdog bounds the wait.
    """
    import tensorflow as tf

    if cluster.multi_worker:
        os.environ["TF_CONFIG"] = json.dumps(cluster.tf_config())
        # a watchdog process: the strategy blocks in C++ without the GIL while peers are missing
        met = Watchdog(startup_timeout, startup_message(cluster, startup_timeout))
        gpus = tf.config.list_physical_devices("GPU")
        impl = tf.distribute.experimental.CommunicationImplementation
        options = tf.distribute.experimental.CommunicationOptions(implementation=impl.NCCL if gpus else impl.RING)
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except tf.errors.UnknownError as e:
            met.stop()
            if "gRPC server" in str(e):
                raise cluster_lib.ClusterError(
                    f"worker {cluster.index} cannot listen on {cluster.workers[cluster.index]} ({e.message}): the port "
                    "is in use or the address is not this machine's; free the port or fix TF_CONFIG/--host-pattern"
                ) from e
            raise
        one = strategy.run(lambda: tf.constant(1.0))
        strategy.reduce(tf.distribute.ReduceOp.SUM, one, axis=None)
        met.stop()
        return strategy
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def make_optimizer(cfg: Config, schedule):
    import tensorflow as tf

    t = cfg.train
    clip = {"global_clipnorm": t.clipnorm} if t.clipnorm else {}
    if t.optimizer == "adam":
        return tf.keras.optimizers.Adam(learning_rate=schedule, **clip)
    if t.optimizer == "adamw":
        return tf.keras.optimizers.AdamW(learning_rate=schedule, weight_decay=t.weight_decay, **clip)
    if t.optimizer == "sgd":
        return tf.keras.optimizers.SGD(learning_rate=schedule, momentum=t.momentum, **clip)
    raise ConfigError(f"unknown optimizer {t.optimizer!r}")


def _remove_if_empty(path: str) -> None:
    import tensorflow as tf

    try:
        if tf.io.gfile.isdir(path) and not tf.io.gfile.listdir(path):
            tf.io.gfile.rmtree(path)
    except tf.errors.OpError:
        pass  # another worker got there first, or it is not empty after all


def mean_prediction(manifest, y):
    """What predict-the-mean outputs: the sample mean (regression) or the class frequencies."""
    import numpy as np

    if manifest.task == "regression":
        return np.broadcast_to(y.mean(axis=0), y.shape).astype(np.float32)
    if manifest.task == "binary":
        return np.full(y.shape, float(np.clip(y.mean(), 1e-6, 1 - 1e-6)), np.float32)
    freq = np.bincount(y.reshape(-1).astype(int), minlength=manifest.num_classes) / y.size
    return np.broadcast_to(np.clip(freq, 1e-6, 1), (len(y), manifest.num_classes)).astype(np.float32)


def argv_for_doctor(argv: list[str] | None) -> list[str]:
    """The model/optimization flags of this run, to repeat for the doctor."""
    import sys

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


def preflight_job_dir(job_dir: str, cluster: cluster_lib.Cluster, min_free_mb: int) -> None:
    """Fail before training when the job dir cannot be written or its disk is (nearly) full."""
    import shutil

    import tensorflow as tf

    target = cluster_lib.write_path(job_dir, cluster)
    probe = posixpath.join(target, f".seqscale-probe-{cluster.index}")
    try:
        tf.io.gfile.makedirs(target)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        raise ConfigError(f"cannot write to the job dir {target} ({e}); choose a writable --job-dir") from e
    if "://" not in job_dir:
        free_mb = shutil.disk_usage(target).free / 2**20
        if free_mb < min_free_mb:
            raise ConfigError(
                f"the job dir {target} has {free_mb:.0f} MB free, less than the {min_free_mb} MB needed for checkpoints, "
                "backups and the export; free space or choose another --job-dir (--min-free-disk-mb sets the limit)")


def run(argv: list[str] | None = None) -> dict:
    """Train as configured by `argv`; returns a summary dict (also logged)."""
    args = build_parser().parse_args(argv)
    cfg = resolve(args, load_config_file(args.config) if args.config else None)
    cluster = cluster_lib.resolve(num_workers=cfg.runtime.num_workers, host_pattern=cfg.runtime.host_pattern,
                                  base_port=cfg.runtime.base_port)
    strategy = make_strategy(cluster, cfg.runtime.startup_timeout)  # first TF op

    import tensorflow as tf

    from training import callbacks as cb
    from training import data as data_lib
    from training import ensure_keras2
    from training.evaluate import evaluate, format_table, write_report
    from training.export import export
    from training.model import build_model, make_loss, resolve_head
    from training.schedule import WarmupSchedule, default_rule, describe, scale_lr

    ensure_keras2()
    started = time.time()
    t = cfg.train
    job_dir = cfg.runtime.job_dir
    preflight_job_dir(job_dir, cluster, cfg.runtime.min_free_disk_mb)
    tf.keras.utils.set_random_seed(t.seed)
    if t.mixed_precision:
        if not tf.config.list_physical_devices("GPU"):
            log.warning("--mixed-precision without a GPU: float16 on CPU is slow; it is meant for GPUs")
        tf.keras.mixed_precision.set_global_policy("mixed_float16")

    manifest = data_lib.load_manifest(cfg.data.data)
    data_lib.verify_shards(manifest, cfg.data.data, hashes=cfg.data.verify_hashes)
    head = resolve_head(manifest, cfg.model)
    replicas = strategy.num_replicas_in_sync
    per_replica, global_batch = batch_sizes(t, replicas)
    steps = data_lib.steps_per_epoch(manifest, global_batch)
    train_steps = min(steps.train, t.max_steps_per_epoch) if t.max_steps_per_epoch else steps.train
    val_steps = steps.val
    rule = default_rule(t.optimizer) if t.lr_scaling == "auto" else t.lr_scaling
    peak = scale_lr(t.base_lr, global_batch, t.reference_batch, rule)
    warmup_steps = round(t.warmup_epochs * train_steps)
    log.info("worker %d of %d (%s), %d replicas in sync; batch %d per replica, %d global; %d train steps/epoch, "
             "%d validation steps", cluster.index, cluster.num_workers, "chief" if cluster.is_chief else "worker",
             replicas, per_replica, global_batch, train_steps, val_steps)
    log.info(describe(peak, t.base_lr, global_batch, t.reference_batch, rule, warmup_steps, train_steps, t.epochs,
                      "constant" if t.decay == "plateau" else t.decay, t.min_lr))

    policy = cfg.data.shard_policy

    def train_input(ctx: tf.distribute.InputContext):
        ds = data_lib.read_windows(manifest, cfg.data.data, "train", shuffle=cfg.data.shuffle, seed=t.seed,
                                   shuffle_buffer=cfg.data.shuffle_buffer, cycle_length=cfg.data.cycle_length,
                                   input_context=ctx, policy=policy)
        return data_lib.batched(ds, ctx.get_per_replica_batch_size(global_batch), repeat=True)

    def val_input(ctx: tf.distribute.InputContext):
        return data_lib.eval_batches(manifest, cfg.data.data, "val", ctx.get_per_replica_batch_size(global_batch),
                                     steps=val_steps, input_context=ctx)

    train_ds = strategy.distribute_datasets_from_function(train_input)
    val_ds = strategy.distribute_datasets_from_function(val_input) if val_steps else None
    if not val_steps:
        log.warning("the val split has fewer windows (%d) than one global batch (%d): no validation, no early "
                    "stopping", manifest.windows("val"), global_batch)

    backup_dir = posixpath.join(job_dir, "backup")
    state_dir = posixpath.join(backup_dir, "seqscale_state")
    with strategy.scope():
        model = build_model(manifest, cfg.model, seed=t.seed, mixed_precision=t.mixed_precision)
        factor = tf.Variable(1.0, trainable=False, name="lr_plateau_factor") if t.decay == "plateau" else None
        schedule = WarmupSchedule(peak, warmup_steps, train_steps * t.epochs,
                                  "constant" if t.decay == "plateau" else t.decay, t.min_lr, factor)
        metrics = ["mae"] if manifest.task == "regression" else ["accuracy"]
        model.compile(optimizer=make_optimizer(cfg, schedule), loss=make_loss(head), metrics=metrics)

    callbacks = [tf.keras.callbacks.BackupAndRestore(backup_dir), cb.LearningRateLogger(), cb.EpochTimer()]
    if val_steps and t.patience:
        callbacks.append(cb.PersistentEarlyStopping(
            cb.StateStore(state_dir, "early_stopping", writer=cluster.is_chief),
            monitor="val_loss", patience=t.patience, min_delta=t.min_delta, restore_best_weights=True, verbose=1))
    if factor is not None and val_steps:
        callbacks.append(cb.PlateauFactor(factor, cb.StateStore(state_dir, "plateau", writer=cluster.is_chief),
                                          patience=t.plateau_patience, factor=t.plateau_factor))
    sample = data_lib.sample_windows(manifest, cfg.data.data, n=2048)
    guard = cb.FlatLossGuard(
        baseline=float(make_loss(head)(sample["y"], mean_prediction(manifest, sample["y"]))),
        sample_x=sample["x"][:256], target_std=float(sample["y"].std()),
        doctor_cmd=f"seqscale-doctor --data {cfg.data.data} " + " ".join(argv_for_doctor(argv)),
        checkpoint_path=posixpath.join(job_dir, "checkpoints", "last_good.npz"), writer=cluster.is_chief,
        patience=t.flat_patience, tolerance=t.flat_tolerance)
    callbacks.append(guard)
    history_path = posixpath.join(job_dir, "history.json")
    callbacks += [
        tf.keras.callbacks.TensorBoard(cluster_lib.write_path(job_dir, cluster, "logs"), profile_batch=0),
        cb.HistoryWriter(history_path, writer=cluster.is_chief),
    ]
    model.fit(train_ds, epochs=t.epochs, steps_per_epoch=train_steps, validation_data=val_ds,
              validation_steps=val_steps or None, callbacks=callbacks, verbose=2)

    epochs = cb.read_history(history_path) if cluster.is_chief else callbacks[-1].epochs
    if guard.reason is not None:
        if cluster.is_chief and epochs:
            cb.plot_history(epochs, posixpath.join(job_dir, "loss.png"))
        raise cb.TrainingStopped(guard.reason)
    summary = {"epochs_run": len(epochs), "global_batch": global_batch, "peak_lr": peak,
               "final": epochs[-1] if epochs else {}, "seconds": round(time.time() - started, 1)}
    if cluster.is_chief:
        cb.plot_history(epochs, posixpath.join(job_dir, "loss.png"))
        plain = build_model(manifest, cfg.model, seed=t.seed)  # outside the strategy, for export and eval
        plain.set_weights(model.get_weights())
        export(plain, manifest, posixpath.join(job_dir, "export"), config_json=cfg.to_json())
        with tf.io.gfile.GFile(posixpath.join(job_dir, "config.json"), "w") as f:
            f.write(cfg.to_json())
        if cfg.runtime.evaluate and manifest.windows("test"):
            report = evaluate(plain, manifest, cfg.data.data)
            write_report(report, posixpath.join(job_dir, "eval.json"))
            summary["eval"] = report
            print(format_table(report), flush=True)
        if tf.io.gfile.exists(state_dir):
            tf.io.gfile.rmtree(state_dir)
        _remove_if_empty(backup_dir)
    else:
        scratch = cluster_lib.write_path(job_dir, cluster)
        if tf.io.gfile.exists(scratch):
            tf.io.gfile.rmtree(scratch)
        _remove_if_empty(posixpath.dirname(scratch))
    log.info("done: %s", json.dumps({k: v for k, v in summary.items() if k != "eval"}))
    return summary
