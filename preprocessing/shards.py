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
import queue
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from contract.manifest import ShardInfo
from contract.records import WINDOW_SETS
from contract.window import WindowSpec
from preprocessing.records import encode_block_parts, frame, frame_parts
from preprocessing.window import gather_windows

MAX_UNITS_IN_MEMORY = 8
MAX_BYTES_IN_MEMORY = 256 << 20  # a shard writer's staged units in memory (at least one unit)


@dataclass(frozen=True)
class StagedUnit:
    """A work unit's scaled rows and its windows' start rows, dealt to shards.

    `counts[split][j]` windows of the unit go to shard j of that split.
    """

    path: str
    counts: dict[str, tuple[int, ...]]
    nbytes: int = 0  # the staged arrays' size in memory


@dataclass(frozen=True, order=True)
class ShardResult:
    """One finished shard file in staging."""

    split: str
    index: int
    name: str
    windows: int
    bytes: int
    sha256: str
    staged: str  # its path in the staging area

    @property
    def info(self) -> ShardInfo:
        return ShardInfo(file=self.name, windows=self.windows, bytes=self.bytes, sha256=self.sha256)


def encode_windows(
    x: np.ndarray,
    y: np.ndarray,
    t: np.ndarray,
    sid: np.ndarray,
    starts: np.ndarray,
    spec: WindowSpec,
    *,
    block_size: int,
) -> Iterator[tuple[int, bytes]]:
    """Framed TFRecord records of blocks of windows: (windows in record, bytes)."""
    for i in range(0, len(starts), block_size):
        s = starts[i : i + block_size]
        xb, yb = gather_windows(x, y, s, spec)
        if yb.ndim == 2:
            yb = yb[:, None, :]
        last = spec.last_input(s)
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
    return StagedUnit(path=path, counts=counts, nbytes=sum(a.nbytes for a in arrays.values()))


class UnitCache:
    """The last few staged units loaded by this worker (shard writers share units), at most `size`
    units and `max_bytes` (but always the newest one)."""

    def __init__(self, size: int = MAX_UNITS_IN_MEMORY, max_bytes: int = MAX_BYTES_IN_MEMORY) -> None:
        self.size, self.max_bytes = size, max_bytes
        self._units: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()

    def get(self, path: str) -> dict[str, np.ndarray]:
        if path in self._units:
            self._units.move_to_end(path)
            return self._units[path]
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f, \
                np.load(io.BytesIO(f.read())) as data:
            arrays = {k: np.ascontiguousarray(data[k]) for k in data.files}  # windows are runs of rows
        self._units[path] = arrays
        while len(self._units) > 1 and (len(self._units) > self.size or self.nbytes > self.max_bytes):
            self._units.popitem(last=False)
        return arrays

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for arrays in self._units.values() for a in arrays.values())


def _groups(units: list[StagedUnit], size: int, max_bytes: int) -> Iterator[list[StagedUnit]]:
    """Consecutive groups of at most `size` units and `max_bytes` (a larger unit alone)."""
    group: list[StagedUnit] = []
    for u in units:
        if group and (len(group) == size or sum(g.nbytes for g in group) + u.nbytes > max_bytes):
            yield group
            group = []
        group.append(u)
    if group:
        yield group


def _unit_windows(cache: UnitCache, unit: StagedUnit, split: str, shard: int, spec: WindowSpec) -> dict[str, np.ndarray]:
    data = cache.get(unit.path)
    counts = unit.counts[split]
    lo = sum(counts[:shard])
    out = {k: data[k] for k in ("x", "y", "t", "sid")}
    out["windows"] = windows_view(data["x"], spec.look_back)  # made once per unit and shard, not per block
    out["starts"] = data[f"starts_{split}"][lo : lo + counts[shard]]
    return out


def shard_records(
    units: list[StagedUnit],
    split: str,
    shard: int,
    rng: np.random.Generator,
    spec: WindowSpec,
    *,
    block_size: int,
    cache: UnitCache | None = None,
) -> Iterator[tuple[int, tuple[bytes, bytes, bytes]]]:
    """Records of one shard: full blocks of windows drawn from its units in a seeded random order.

    Writing one unit after the other would put one time chunk first in every shard, so the
    start of an epoch would see only early times. Windows are drawn from a group of units at
    once (up to the cache's unit count and bytes in memory), in one random order over them, and cut
    into blocks of `block_size` across units (a record names each window's series and
    time), so only the shard's last record may be short, however small its units are.
    Groups come in random order; a short block at a group's end is carried into the next.
    Each record comes as its `frame_parts`, for `write_shard`.
    """
    cache = cache or UnitCache()
    mine = sorted((u for u in units if u.counts[split][shard] > 0), key=lambda u: u.path)
    mine = [mine[i] for i in rng.permutation(len(mine))]
    carry: list[np.ndarray] | None = None
    for group in _groups(mine, cache.size, cache.max_bytes):
        members = [_unit_windows(cache, u, split, shard, spec) for u in group]
        who = np.concatenate([np.full(len(m["starts"]), i, np.int64) for i, m in enumerate(members)])
        pos = np.concatenate([np.arange(len(m["starts"]), dtype=np.int64) for m in members])
        order = rng.permutation(len(who))
        who, pos = who[order], pos[order]
        first = 0
        if carry is not None:
            first = block_size - len(carry[2])
            carry = _concat(carry, _gather(members, who[:first], pos[:first], spec))
            if len(carry[2]) < block_size:
                continue
            yield len(carry[2]), frame_parts(encode_block_parts(*carry))
            carry = None
        for i in range(first, len(who), block_size):
            block = _gather(members, who[i : i + block_size], pos[i : i + block_size], spec)
            if len(block[2]) < block_size:
                carry = block
                break
            yield len(block[2]), frame_parts(encode_block_parts(*block))
    if carry is not None and len(carry[2]):
        yield len(carry[2]), frame_parts(encode_block_parts(*carry))


def _gather(members: list[dict[str, np.ndarray]], who: np.ndarray, pos: np.ndarray,
            spec: WindowSpec) -> list[np.ndarray]:
    """[x, y, t, sid] of the windows (member who[k], its pos[k]-th start), grouped by member.

    Each member's windows are gathered into their slice of the block, each window's rows as
    one contiguous run (`windows_view`). Within a block the windows come member by member; the
    blocks themselves are drawn at random and the reader shuffles windows again.
    """
    order = np.argsort(who, kind="stable")
    who, pos = who[order], pos[order]
    bounds = np.searchsorted(who, np.arange(len(members) + 1))
    n = len(who)
    m0 = members[0]
    x = np.empty((n, *spec.x_shape(m0["x"].shape[1])), m0["x"].dtype)
    y = np.empty((n, *spec.y_shape(m0["y"].shape[1])), m0["y"].dtype)
    t, sid = np.empty(n, m0["t"].dtype), np.empty(n, m0["sid"].dtype)
    for i, m in enumerate(members):
        a, b = int(bounds[i]), int(bounds[i + 1])
        if a == b:
            continue
        s = m["starts"][pos[a:b]]
        x[a:b] = m["windows"][s]
        np.take(m["y"], spec.target_rows_of(s), axis=0, out=y[a:b] if spec.target_sequence else y[a:b, 0],
                mode="clip")
        last = spec.last_input(s)
        t[a:b], sid[a:b] = m["t"][last], m["sid"][last]
    return [x, y, t, sid]


def windows_view(x: np.ndarray, look_back: int) -> np.ndarray:
    """[n - look_back + 1, look_back, C] read-only view: window k is rows k .. k + look_back - 1.

    Indexing it with window starts copies each window's rows as one contiguous run, ~1.6x
    faster than `np.take` with a [W, L] row index (which copies row by row).
    """
    return np.lib.stride_tricks.sliding_window_view(x, look_back, axis=0).transpose(0, 2, 1)


def _concat(a: list[np.ndarray], b: list[np.ndarray]) -> list[np.ndarray]:
    return [np.concatenate([p, q]) for p, q in zip(a, b, strict=True)]


class _HashingWriter:
    """File-like that hashes and writes in two background threads.

    sha256 and file writes release the GIL, so on a worker with two cores hashing one record
    and writing another overlap with cutting and encoding the next (one thread doing both was
    the shard writer's bottleneck: the cutting thread waited for it a third of the time).
    `writelines` takes a framed record's pieces (`frame_parts`) as one queued item; each thread
    sees the records in order.
    """

    def __init__(self, f) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0
        self._error: BaseException | None = None
        self._queues: list[queue.Queue] = [queue.Queue(maxsize=32), queue.Queue(maxsize=32)]
        self._threads = [threading.Thread(target=self._drain, args=(q, use), daemon=True)
                         for q, use in zip(self._queues, (self.sha.update, self.f.write), strict=True)]
        for t in self._threads:
            t.start()

    def _drain(self, q: queue.Queue, use) -> None:
        while (parts := q.get()) is not None:
            if self._error is None:
                try:
                    for b in parts:
                        use(b)
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = e

    def writelines(self, parts) -> None:
        if self._error is not None:
            raise self._error
        for q in self._queues:
            q.put(parts)
        self.size += sum(len(p) for p in parts)

    def write(self, b) -> int:
        self.writelines((b,))
        return len(b)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
        for t in self._threads:
            t.join()
        if self._error is not None:
            raise self._error


def write_shard(dest: str, records: Iterable[tuple[int, bytes | tuple[bytes, ...]]], *,
                compression: str) -> tuple[int, int, str]:
    """Write framed records (bytes, or a record's `frame_parts`) to `dest` (GZIP if asked).

    Returns (windows, bytes, sha256).
    """
    windows = 0
    with FileSystems.create(dest, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        hw = _HashingWriter(raw)
        out = gzip.GzipFile(fileobj=hw, mode="wb", compresslevel=6, mtime=0) if compression == "gzip" else hw
        try:
            for n, rec in records:
                out.writelines((rec,) if isinstance(rec, bytes) else rec)
                windows += n
            if compression == "gzip":
                out.close()
        finally:
            hw.close()
    return windows, hw.size, hw.sha.hexdigest()


def shard_infos(results: Iterable[ShardResult]) -> dict[str, tuple[ShardInfo, ...]]:
    """Shard results -> the manifest's shard lists, in index order per split."""
    ordered = sorted(results)
    return {s: tuple(r.info for r in ordered if r.split == s) for s in WINDOW_SETS}
