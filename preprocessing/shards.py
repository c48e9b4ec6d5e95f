"""Write windows into shard files without a Beam shuffle of materialized windows.

Each work unit permutes its windows (seeded), deals them evenly to all N shards of each
split, and stages its scaled rows plus the start rows of each shard's windows (rows are
L times smaller than windows). One writer per shard then cuts its windows from the
staged units, drawing records from several units in a seeded random order, and writes
`{split}-SSSSS-of-NNNNN.tfrecord[.gz]` once while hashing it; the commit step moves the
shards into place and writes metadata.json last. So every shard holds a random sample
of every unit (all series and time ranges), the reader's interleave + shuffle buffer
finish the mixing, every window's bytes are written exactly once, and no process holds
more than a few units of rows and one block of windows. All file access goes through
Beam's FileSystems, so local paths and gs:// behave the same.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import queue
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from preprocessing.errors import OutputError
from preprocessing.manifest import MANIFEST_NAME, ShardInfo
from preprocessing.records import encode_block_parts, frame
from preprocessing.split import SPLITS
from preprocessing.window import gather_windows

log = logging.getLogger(__name__)
MAX_UNITS_IN_MEMORY = 8


@dataclass(frozen=True)
class StagedUnit:
    """A work unit's scaled rows and its windows' start rows, dealt to shards.

    `counts[split][j]` windows of the unit go to shard j of that split.
    """

    path: str
    counts: dict[str, tuple[int, ...]]


def shard_name(split: str, index: int, count: int, compression: str) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord" + (".gz" if compression == "gzip" else "")


def deal(perm: np.ndarray, shards: int, offset: int) -> list[np.ndarray]:
    """Split a permutation into `shards` near-equal parts; `offset` rotates who gets extras."""
    parts = np.array_split(perm, shards)
    return parts[-offset % shards :] + parts[: -offset % shards] if shards else []


def encode_windows(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    sid: np.ndarray,
    starts: np.ndarray,
    *,
    look_back: int,
    horizon: int,
    target_sequence: bool,
    block_size: int,
) -> Iterator[tuple[int, bytes]]:
    """Framed TFRecord records of blocks of windows: (windows in record, bytes)."""
    for i in range(0, len(starts), block_size):
        s = starts[i : i + block_size]
        xb, yb = gather_windows(x, y, s, look_back=look_back, horizon=horizon, target_sequence=target_sequence)
        if yb.ndim == 2:
            yb = yb[:, None, :]
        last = s + look_back - 1
        yield len(s), frame(encode_block_parts(xb, yb, t[last], sid[last]))


def stage_unit(path: str, *, x, y, t, sid, starts_by_split: dict[str, list[np.ndarray]]) -> StagedUnit:
    """Write a unit's rows and per-shard window starts (an uncompressed .npz) for the shard writers.

    Rows are L times smaller than the windows cut from them, so staging rows and
    cutting windows in the shard writers writes every window's bytes exactly once.
    """
    arrays = {"x": x, "y": y, "t": t, "sid": sid}
    counts = {}
    for split, parts in starts_by_split.items():
        arrays[f"starts_{split}"] = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        counts[split] = tuple(len(p) for p in parts)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        f.write(buf.getbuffer())
    return StagedUnit(path=path, counts=counts)


class UnitCache:
    """The last few staged units loaded by this worker (shard writers share units)."""

    def __init__(self, size: int = MAX_UNITS_IN_MEMORY) -> None:
        self.size = size
        self._units: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()

    def get(self, path: str) -> dict[str, np.ndarray]:
        if path in self._units:
            self._units.move_to_end(path)
            return self._units[path]
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f, \
                np.load(io.BytesIO(f.read())) as data:
            arrays = {k: data[k] for k in data.files}
        self._units[path] = arrays
        while len(self._units) > self.size:
            self._units.popitem(last=False)
        return arrays


def _unit_windows(cache: UnitCache, unit: StagedUnit, split: str, shard: int) -> dict[str, np.ndarray]:
    data = cache.get(unit.path)
    counts = unit.counts[split]
    lo = sum(counts[:shard])
    out = {k: data[k] for k in ("x", "y", "t", "sid")}
    out["starts"] = data[f"starts_{split}"][lo : lo + counts[shard]]
    return out


def shard_records(
    units: list[StagedUnit],
    split: str,
    shard: int,
    rng: np.random.Generator,
    *,
    cache: UnitCache | None = None,
    **encode,
) -> Iterator[tuple[int, bytes]]:
    """Records of one shard, drawn from its units in a seeded random order.

    Writing one unit after the other would put one time chunk first in every shard,
    so the start of an epoch would see only early times. Records are drawn from up
    to `group` units at once (their rows in memory), in proportion to the windows each
    has left; groups come in random order.
    """
    cache = cache or UnitCache()
    group = cache.size
    mine = sorted((u for u in units if u.counts[split][shard] > 0), key=lambda u: u.path)
    mine = [mine[i] for i in rng.permutation(len(mine))]
    for g in range(0, len(mine), group):
        members = [_unit_windows(cache, u, split, shard) for u in mine[g : g + group]]
        streams = [
            encode_windows(m["x"], m["y"], m["t"], m["sid"], m["starts"], **encode) for m in members
        ]
        left = np.array([len(m["starts"]) for m in members], dtype=np.float64)
        while left.sum() > 0:
            i = int(rng.choice(len(left), p=left / left.sum()))
            n, rec = next(streams[i])
            left[i] -= n
            yield n, rec


class _HashingWriter:
    """File-like that hashes and writes in a background thread.

    sha256 and file writes release the GIL, so on a worker with two cores hashing and
    writing one record overlaps with cutting and encoding the next.
    """

    def __init__(self, f) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0
        self._q: queue.Queue = queue.Queue(maxsize=32)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (b := self._q.get()) is not None:
            if self._error is None:
                try:
                    self.sha.update(b)
                    self.f.write(b)
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = e

    def write(self, b: bytes) -> int:
        if self._error is not None:
            raise self._error
        self._q.put(b)
        self.size += len(b)
        return len(b)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._q.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def write_shard(dest: str, records: Iterable[tuple[int, bytes]], *, compression: str) -> tuple[int, int, str]:
    """Write framed records to `dest` (GZIP if asked); returns (windows, bytes, sha256)."""
    windows = 0
    with FileSystems.create(dest, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        hw = _HashingWriter(raw)
        out = gzip.GzipFile(fileobj=hw, mode="wb", compresslevel=6, mtime=0) if compression == "gzip" else hw
        try:
            for n, rec in records:
                out.write(rec)
                windows += n
            if compression == "gzip":
                out.close()
        finally:
            hw.close()
    return windows, hw.size, hw.sha.hexdigest()


def staging_dir(output: str, run_id: str) -> str:
    return FileSystems.join(output, f".seqscale-staging-{run_id}")


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _exists(path: str) -> bool:
    return FileSystems.exists(path)


def _list(pattern: str) -> list[str]:
    try:
        return [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    except Exception:  # noqa: BLE001 - a missing directory matches nothing
        return []


def prepare_output(output: str, *, overwrite: bool, run_id: str) -> str:
    """Refuse an existing dataset unless --overwrite; prove the location is writable.

    Returns the staging directory of this run. The old dataset (if any) stays valid
    until the commit step replaces it.
    """
    if _exists(FileSystems.join(output, MANIFEST_NAME)) and not overwrite:
        raise OutputError(
            f"{output} already holds a dataset (metadata.json); pass --overwrite to replace it or choose another --output"
        )
    leftovers = [p for p in _list(FileSystems.join(output, "*")) if not p.rstrip("/").endswith(MANIFEST_NAME)]
    if leftovers and not overwrite:
        raise OutputError(
            f"{output} is not empty ({len(leftovers)} files, e.g. {leftovers[0]}); pass --overwrite to replace "
            "its contents or choose an empty --output"
        )
    staging = staging_dir(output, run_id)
    probe = FileSystems.join(staging, "probe")
    try:
        with FileSystems.create(probe) as f:
            f.write(b"ok")
        FileSystems.delete([probe])
    except Exception as e:  # noqa: BLE001 - any storage error means the same to the user
        raise OutputError(f"cannot write to {output} ({e}); check the path and your permissions") from e
    return staging


def commit(output: str, staging: str, shards: dict[str, list[tuple[str, str]]], manifest_json: str) -> None:
    """Move finished shards into `output`, remove an old dataset, write metadata.json last.

    Readers see the old dataset, no dataset (no metadata.json), or the new one: the old
    manifest is deleted before anything of the old dataset is touched, and the new one
    is written (to a temporary name, then renamed) after every shard is in place.
    """
    old_manifest = FileSystems.join(output, MANIFEST_NAME)
    if _exists(old_manifest):
        FileSystems.delete([old_manifest])
    keep = {FileSystems.join(output, name) for split in SPLITS for _, name in shards.get(split, [])}
    stale = [
        p
        for p in _list(FileSystems.join(output, "*"))
        if p not in keep and not p.rstrip("/").split("/")[-1].startswith(".seqscale-staging-")
    ]
    stale_staging = [p for p in staging_areas(output) if p.rstrip("/") != staging.rstrip("/")]
    src, dst = [], []
    for split in SPLITS:
        for staged, name in shards.get(split, []):
            src.append(staged)
            dst.append(FileSystems.join(output, name))
    if stale:
        FileSystems.delete(stale)
    if src:
        FileSystems.rename(src, dst)
    tmp = FileSystems.join(output, f".{MANIFEST_NAME}.tmp")
    with FileSystems.create(tmp, mime_type="application/json") as f:
        f.write(manifest_json.encode())
    FileSystems.rename([tmp], [old_manifest])
    _delete_tree(staging)
    for p in stale_staging:
        _delete_tree(p)


def staging_areas(output: str) -> list[str]:
    """Staging directories in `output`, including empty ones left by killed runs."""
    if "://" not in output:
        if not os.path.isdir(output):
            return []
        return sorted(os.path.join(output, n) for n in os.listdir(output) if n.startswith(".seqscale-staging-"))
    marker = ".seqscale-staging-"
    return sorted({p[: p.index(marker)] + p[p.index(marker):].split("/")[0]
                   for p in _list(FileSystems.join(output, marker + "*", "**"))})


def discard(staging: str) -> None:
    """Remove a failed run's staging area (best effort; it never holds a manifest)."""
    _delete_tree(staging)


def _delete_tree(path: str) -> None:
    files = _list(FileSystems.join(path, "**"))
    try:
        if files:
            FileSystems.delete(files)
        if _exists(path):
            FileSystems.delete([path])
    except Exception as e:  # noqa: BLE001 - leftover scratch is harmless, but say so
        log.warning("could not remove scratch %s: %s", path, e)


def shard_infos(results: Iterable[tuple[str, int, str, int, int, str]]) -> dict[str, tuple[ShardInfo, ...]]:
    """(split, index, name, windows, bytes, sha256) tuples -> manifest shard lists."""
    by_split: dict[str, list] = {s: [] for s in SPLITS}
    for split, index, name, windows, size, sha in results:
        by_split[split].append((index, ShardInfo(file=name, windows=windows, bytes=size, sha256=sha)))
    return {s: tuple(info for _, info in sorted(v)) for s, v in by_split.items()}
