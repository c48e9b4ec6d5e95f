"""Staged units -> shard files: every dealt window written once, equal to gather_windows."""

import hashlib
import os

import numpy as np

from contract.window import WindowSpec
from preprocessing import shards
from preprocessing.records import iter_frames
from preprocessing.window import gather_windows
from tests.helpers import read_split


def staged(tmp_path, spec, n_units=3, rows=50, shard_count=2):
    rng = np.random.default_rng(0)
    units, arrays = [], []
    for u in range(n_units):
        x = rng.normal(size=(rows, 2)).astype(np.float32)
        y = rng.normal(size=(rows, 1)).astype(np.float32)
        t = np.arange(rows, dtype=np.int64) + 1000 * u
        sid = np.full(rows, u, np.int64)
        starts = rng.permutation(spec.count(rows))
        dealt = np.array_split(starts, shard_count)
        units.append(shards.stage_unit(str(tmp_path / f"u{u}.npz"), x=x, y=y, t=t, sid=sid,
                                       starts_by_split={"train": dealt, "val": [], "test": []}))
        arrays.append((x, y, t, starts))
    return units, arrays


def test_shard_records_cut_each_dealt_window_once(tmp_path):
    spec = WindowSpec(look_back=4, horizon=2)
    units, arrays = staged(tmp_path, spec)
    got_t = []
    for shard in range(2):
        for n, rec in shards.shard_records(units, "train", shard, np.random.default_rng(shard), spec, block_size=16):
            assert n <= 16 and len(list(iter_frames(b"".join(rec)))) == 1
            got_t.append(n)
    assert sum(got_t) == sum(len(a[3]) for a in arrays)


def test_written_shard_reads_back_as_the_gathered_windows(tmp_path):
    spec = WindowSpec(look_back=4, horizon=2)
    units, arrays = staged(tmp_path, spec, n_units=1, shard_count=1)
    out = tmp_path / "ds"
    out.mkdir()
    name = "train-00000-of-00001.tfrecord"
    records = shards.shard_records(units, "train", 0, np.random.default_rng(0), spec, block_size=8)
    windows, size, sha = shards.write_shard(str(out / name), records, compression="none")
    data = (out / name).read_bytes()
    assert size == len(data) == os.path.getsize(out / name) and sha == hashlib.sha256(data).hexdigest()
    x, y, t, starts = arrays[0]
    assert windows == len(starts)
    result = shards.ShardResult("train", 0, name, windows, size, sha, str(out / name))
    (out / "metadata.json").write_text(_manifest_json(spec, {"train": (result.info,)}))
    back = read_split(out, "train")
    ref_x, ref_y = gather_windows(x, y, starts, spec)
    order = np.argsort(back["t"])
    ref_order = np.argsort(t[spec.last_input(starts)])
    np.testing.assert_array_equal(back["x"][order], ref_x[ref_order])
    np.testing.assert_array_equal(back["y"][order], ref_y[ref_order])


def test_shard_infos_order_by_split_and_index():
    r = [shards.ShardResult("val", 1, "v1", 1, 1, "a", "s"), shards.ShardResult("train", 0, "t0", 2, 2, "b", "s"),
         shards.ShardResult("val", 0, "v0", 3, 3, "c", "s")]
    infos = shards.shard_infos(r)
    assert [i.file for i in infos["val"]] == ["v0", "v1"] and [i.file for i in infos["train"]] == ["t0"]
    assert infos["test"] == ()


def _manifest_json(spec, shard_infos):
    from contract.manifest import Boundaries, DatasetSpec, Encoding, Manifest

    m = Manifest.build(created="", spec=DatasetSpec(time_column="t", features=("a", "b"), targets=("c",)),
                       window=spec, time_kind="integer", time_range=(0, 1), step=1, max_gap=1,
                       boundaries=Boundaries(1, 1), scaler="standard", columns=(), shards=shard_infos, counts={},
                       units=1, encoding=Encoding(block_size=8))
    return m.to_json()


def test_records_are_full_blocks_across_small_units(tmp_path):
    """Ten units of 14 windows each in one shard: records of 16 windows mix units, only the last is short,
    and each window's inputs, target, time and series are its own unit's."""
    spec = WindowSpec(look_back=4, horizon=2)
    units, arrays = staged(tmp_path, spec, n_units=10, rows=19, shard_count=1)
    from preprocessing.records import iter_frames

    sizes, got = [], []
    for n, rec in shards.shard_records(units, "train", 0, np.random.default_rng(1), spec, block_size=16,
                                       cache=shards.UnitCache(size=3)):
        assert len(list(iter_frames(b"".join(rec)))) == 1
        sizes.append(n)
    assert sum(sizes) == 140 and sizes[:-1] == [16] * 8 and sizes[-1] == 12
    out = tmp_path / "ds"
    out.mkdir()
    name = "train-00000-of-00001.tfrecord"
    records = shards.shard_records(units, "train", 0, np.random.default_rng(1), spec, block_size=16)
    windows, size, sha = shards.write_shard(str(out / name), records, compression="none")
    result = shards.ShardResult("train", 0, name, windows, size, sha, str(out / name))
    (out / "metadata.json").write_text(_manifest_json(spec, {"train": (result.info,)}))
    back = read_split(out, "train")
    for u, (x, y, t, starts) in enumerate(arrays):
        mine = back["sid"] == u
        ref_x, ref_y = gather_windows(x, y, starts, spec)
        order, ref_order = np.argsort(back["t"][mine]), np.argsort(t[spec.last_input(starts)])
        np.testing.assert_array_equal(back["x"][mine][order], ref_x[ref_order])
        np.testing.assert_array_equal(back["y"][mine][order].reshape(len(ref_y), -1), ref_y[ref_order])
        got.append(int(mine.sum()))
    assert got == [14] * 10
