"""Manifest -> tf.data: integrity checks, equal steps on every worker, DATA-shard equivalence."""

import shutil

import numpy as np
import pytest
import tensorflow as tf

import training  # noqa: F401
from training.data import (
    DatasetError,
    eval_batches,
    load_manifest,
    read_windows,
    steps_per_epoch,
    verify_shards,
)


def ctx(n, i):
    return tf.distribute.InputContext(num_input_pipelines=n, input_pipeline_id=i, num_replicas_in_sync=n)


def copy(dataset, tmp_path):
    d = tmp_path / "copy"
    shutil.copytree(dataset, d)
    return d


def test_missing_truncated_and_altered_shards_are_named(dataset, tmp_path):
    d = copy(dataset, tmp_path)
    m = load_manifest(str(d))
    verify_shards(m, str(d), hashes=True)
    first = d / m.shards["train"][0].file
    data = first.read_bytes()
    first.write_bytes(data[:-10])
    with pytest.raises(DatasetError, match=f"{first.name} has {len(data) - 10} bytes but metadata.json lists"):
        verify_shards(m, str(d))
    first.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    verify_shards(m, str(d))  # same size: only the hash notices
    with pytest.raises(DatasetError, match=f"{first.name} does not match its sha256"):
        verify_shards(m, str(d), hashes=True)
    first.unlink()
    with pytest.raises(DatasetError, match=f"{first.name} listed in metadata.json is missing"):
        verify_shards(m, str(d))


def test_no_manifest_is_not_a_dataset(tmp_path):
    from contract.manifest import ManifestError

    with pytest.raises(ManifestError, match="not a finished seqscale dataset"):
        load_manifest(str(tmp_path))


def test_eval_batches_score_every_window_once_with_the_same_step_count_on_every_worker(dataset):
    m = load_manifest(str(dataset))
    steps = steps_per_epoch(m, 64)
    windows = m.windows("val")
    assert steps.val == -(-windows // 64) and windows % 64  # the last global batch is partial
    batches = [list(eval_batches(m, str(dataset), "val", 32, steps=steps.val, input_context=ctx(2, i)))
               for i in range(2)]
    assert [len(b) for b in batches] == [steps.val, steps.val]
    x = np.concatenate([xb.numpy() for b in batches for xb, _, _ in b])
    w = np.concatenate([wb.numpy() for b in batches for _, _, wb in b])
    real = w > 0
    assert real.sum() == windows and np.all(x[~real] == 0)
    assert w.sum() == pytest.approx(steps.val * 64)  # so sum(w * loss) / padded count = mean loss
    every = np.concatenate([b["x"] for b in read_windows(m, str(dataset), "val", shuffle=False).batch(512)
                            .as_numpy_iterator()])
    key = lambda a: np.sort(a.reshape(len(a), -1)[:, -1])  # noqa: E731  (last input value of each window)
    np.testing.assert_array_equal(key(x[real]), key(every))


def test_data_sharding_gives_the_same_global_batch_for_any_worker_count(dataset):
    m = load_manifest(str(dataset))
    one = next(iter(read_windows(m, str(dataset), "train", shuffle=True, seed=3, policy="data").batch(64)))
    parts = [next(iter(read_windows(m, str(dataset), "train", shuffle=True, seed=3, policy="data",
                                    input_context=ctx(2, i)).batch(32))) for i in range(2)]
    two = np.concatenate([p["x"].numpy() for p in parts])
    a = one["x"].numpy().reshape(64, -1)
    b = two.reshape(64, -1)
    assert sorted(map(tuple, a.round(6))) == sorted(map(tuple, b.round(6)))


def test_file_sharding_splits_files_and_refuses_too_few(dataset):
    m = load_manifest(str(dataset))
    n = m.windows("train")
    got = sum(sum(1 for _ in read_windows(m, str(dataset), "train", shuffle=False, input_context=ctx(2, i),
                                          policy="file")) for i in range(2))
    assert got == n  # disjoint files, every window once
    with pytest.raises(DatasetError, match="at least as many train shards"):
        read_windows(m, str(dataset), "train", shuffle=False, input_context=ctx(9, 0), policy="file")


def test_steps_per_epoch_refuses_a_batch_larger_than_the_data(dataset):
    m = load_manifest(str(dataset))
    with pytest.raises(DatasetError, match="fewer than one global batch"):
        steps_per_epoch(m, m.windows("train") + 1)
