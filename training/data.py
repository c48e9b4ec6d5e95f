"""Manifest -> tf.data: verified shard lists, shuffled, sharded across workers, batched.

The trainer reads only the shards metadata.json lists, after checking that each exists
with the listed size (and sha256 on request). Every worker takes the same number of
steps per epoch, derived from the manifest's window counts, and its dataset repeats
so no worker runs out of data before the others (uneven per-worker batches hang
MultiWorkerMirroredStrategy or raise OutOfRange).
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
from dataclasses import dataclass

from contract.logs import import_tensorflow
from contract.manifest import MANIFEST_NAME, Manifest, ManifestError
from training.config import DataConfig
from training.errors import DatasetError
from training.lr_plan import full_batches
from training.records import block_decoder, compression_type

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)

log = logging.getLogger(__name__)


def join(base: str, name: str) -> str:
    return posixpath.join(base, name) if "://" in base else tf.io.gfile.join(base, name)


def load_manifest(data_dir: str) -> Manifest:
    path = join(data_dir, MANIFEST_NAME)
    if not tf.io.gfile.exists(path):
        raise ManifestError(
            f"{path} does not exist: {data_dir} is not a finished seqscale dataset (preprocessing writes "
            "metadata.json last); run or rerun preprocessing"
        )
    with tf.io.gfile.GFile(path, "r") as f:
        return Manifest.from_json(f.read(), source=path)


def verify_shards(manifest: Manifest, data_dir: str, *, hashes: bool = False, splits=None) -> None:
    """Every listed shard exists with its size (and sha256 when `hashes`), else name it."""
    for split in manifest.shards if splits is None else splits:
        for s in manifest.shards.get(split, ()):
            path = join(data_dir, s.file)
            if not tf.io.gfile.exists(path):
                raise DatasetError(f"shard {path} listed in metadata.json is missing; rerun preprocessing")
            size = tf.io.gfile.stat(path).length
            if size != s.bytes:
                raise DatasetError(
                    f"shard {path} has {size} bytes but metadata.json lists {s.bytes}: truncated or replaced; "
                    "rerun preprocessing"
                )
            if hashes:
                h = hashlib.sha256()
                with tf.io.gfile.GFile(path, "rb") as f:
                    while chunk := f.read(8 << 20):
                        h.update(chunk)
                if h.hexdigest() != s.sha256:
                    raise DatasetError(f"shard {path} does not match its sha256 in metadata.json: altered; rerun preprocessing")


def shard_paths(manifest: Manifest, data_dir: str, split: str) -> list[str]:
    return [join(data_dir, s.file) for s in manifest.shards[split] if s.windows > 0]


def read_windows(
    manifest: Manifest,
    data_dir: str,
    split: str,
    *,
    shuffle: bool,
    seed: int = 0,
    shuffle_buffer: int = DataConfig.shuffle_buffer,
    cycle_length: int = DataConfig.cycle_length,
    input_context: tf.distribute.InputContext | None = None,
    with_ids: bool = False,
    policy: str = "auto",
) -> tf.data.Dataset:
    """Unbatched windows {x, y[, t, sid]} of one split.

    With `shuffle`, the file list is reshuffled each epoch (seeded), files are read
    interleaved, and windows pass a shuffle buffer. Under a multi-worker input context
    the files are split by worker when there are enough of them (FILE sharding), else
    every worker reads all files and keeps every n-th window (DATA sharding). Under DATA
    sharding every worker shuffles the same stream with the same seed before taking its
    share, so a global batch holds the same windows whatever the worker count.
    """
    files = shard_paths(manifest, data_dir, split)
    if not files:
        raise DatasetError(f"split {split!r} has no windows in {data_dir}; check the split fractions")
    ds = tf.data.Dataset.from_tensor_slices(files)
    workers = input_context.num_input_pipelines if input_context else 1
    index = input_context.input_pipeline_id if input_context else 0
    if policy == "file" and workers > len(files):
        raise DatasetError(
            f"--shard-policy file needs at least as many {split} shards ({len(files)}) as workers ({workers}); "
            "rerun preprocessing with more shards or use --shard-policy auto"
        )
    by_file = workers > 1 and len(files) >= workers and policy != "data"
    if by_file:
        ds = ds.shard(workers, index)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        lambda f: tf.data.TFRecordDataset(f, compression_type=compression_type(manifest)),
        cycle_length=min(cycle_length, len(files)),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    ds = ds.map(block_decoder(manifest, with_ids=with_ids), num_parallel_calls=tf.data.AUTOTUNE).unbatch()
    if shuffle and shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if workers > 1 and not by_file:
        if policy == "auto":
            log.warning(
                "split %s has %d shard files for %d workers: sharding by DATA (every worker reads every file and "
                "keeps 1/%d of the windows). Write at least %d shards (--train-shards) to shard by FILE.",
                split, len(files), workers, workers, workers,
            )
        ds = ds.shard(workers, index)
    return ds


@dataclass(frozen=True)
class Steps:
    """Steps per epoch shared by all workers, from the manifest's counts."""

    train: int
    val: int
    test: int


def steps_per_epoch(manifest: Manifest, global_batch: int, *, num_workers: int = 1) -> Steps:
    """Training: full global batches per epoch; validation and test: enough to score every window.

    With FILE sharding a worker's files may hold fewer windows than the average, so the
    worker datasets repeat; train steps are floor(windows / global batch) so an epoch sees
    each window at most about once. Evaluation steps are ceil(windows / global batch):
    `eval_batches` pads the last ones with zero-weight windows.
    """
    s = Steps(full_batches(manifest.windows("train"), global_batch),
              *(eval_steps(manifest.windows(split), global_batch) for split in ("val", "test")))
    if manifest.windows("train") < global_batch:
        raise DatasetError(
            f"the train split has {manifest.windows('train')} windows, fewer than one global batch of {global_batch}; "
            "lower the batch size or add data"
        )
    return s


def eval_steps(windows: int, global_batch: int) -> int:
    """Global batches that hold every window once (the last one padded)."""
    return -(-windows // global_batch) if windows else 0


def eval_batches(manifest: Manifest, data_dir: str, split: str, batch: int, *, steps: int,
                 input_context: tf.distribute.InputContext | None = None) -> tf.data.Dataset:
    """(x, y, weight) batches scoring every window of the split exactly once, `steps` per worker.

    Every worker reads the split in file order and keeps every n-th window, then pads its
    share to steps x local replicas x batch with zero windows of weight 0, so all workers finish together
    (uneven per-worker batches hang MultiWorkerMirroredStrategy). Real windows weigh
    steps x global batch / windows: Keras divides a batch's weighted loss sum by the batch
    size, padding included, so with this weight val_loss is the plain mean over the split's
    windows, and weighted metrics (sum of w*v / sum of w) are too. Before, the remainder
    of the last global batch was dropped (64 of 120 windows scored on a small daily set).
    """
    workers = input_context.num_input_pipelines if input_context else 1
    index = input_context.input_pipeline_id if input_context else 0
    replicas = input_context.num_replicas_in_sync if input_context else 1
    per_worker = steps * (replicas // workers)  # batches: one per local replica per step
    windows = manifest.windows(split)
    weight = steps * batch * replicas / windows if windows else 0.0
    ds = read_windows(manifest, data_dir, split, shuffle=False)
    if workers > 1:
        ds = ds.shard(workers, index)
    real = ds.map(lambda w: (w["x"], w["y"], tf.constant(weight, tf.float32)))
    x_shape, y_shape = real.element_spec[0].shape, real.element_spec[1].shape
    pad = tf.data.Dataset.from_tensors((tf.zeros(x_shape, tf.float32), tf.zeros(y_shape, real.element_spec[1].dtype),
                                        tf.constant(0.0, tf.float32))).repeat()
    return real.concatenate(pad).take(per_worker * batch).batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def sample_windows(manifest: Manifest, data_dir: str, split: str = "train", n: int = 4096, seed: int = 0,
                   with_ids: bool = False) -> dict:
    """Up to n windows of a split as numpy arrays, shuffled as training sees them (fixed by seed).

    Used for the loss guard's baseline and by the doctor's checks.
    """
    ds = read_windows(manifest, data_dir, split, shuffle=True, seed=seed, shuffle_buffer=4 * n, with_ids=with_ids)
    return next(ds.batch(n).as_numpy_iterator())


def batched(ds: tf.data.Dataset, batch: int, *, repeat: bool) -> tf.data.Dataset:
    """(x, y) batches of exactly `batch` windows; repeats so no worker runs dry."""
    ds = ds.map(lambda w: (w["x"], w["y"]))
    if repeat:
        ds = ds.repeat()
    return ds.batch(batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

