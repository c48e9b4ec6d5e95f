"""Write windows into shard files without a Beam shuffle of materialized windows.

Each work unit permutes its windows (seeded) and deals them evenly to all N shards of
each split, writing one "piece" file per (split, shard). A final step interleaves the
records of each shard's pieces in a seeded random order into
`{split}-SSSSS-of-NNNNN.tfrecord[.gz]` while hashing it, and
the commit step moves the shards into place and writes metadata.json last. So every
shard holds a random sample of every unit (all series and time ranges), the reader's
interleave + shuffle buffer finish the mixing, and no process ever holds more than
one unit and one block of windows. All file access goes through Beam's FileSystems, so
local paths and gs:// behave the same.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import struct
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from preprocessing.errors import OutputError
from preprocessing.manifest import MANIFEST_NAME, ShardInfo
from preprocessing.records import encode_block, frame
from preprocessing.split import SPLITS
from preprocessing.window import gather_windows

log = logging.getLogger(__name__)
MAX_OPEN_PIECES = 64


@dataclass(frozen=True)
class Piece:
    """Part of one shard written by one work unit."""

    split: str
    shard: int
    path: str
    windows: int
    bytes: int


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
        yield len(s), frame(encode_block(xb, yb, t[last], sid[last]))


def write_piece(path: str, records: Iterable[tuple[int, bytes]]) -> tuple[int, int]:
    """Write framed records to `path`; returns (windows, bytes)."""
    windows = size = 0
    with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        for n, rec in records:
            f.write(rec)
            windows += n
            size += len(rec)
    return windows, size


class _HashingWriter:
    """File-like that hashes and counts what reaches the underlying file."""

    def __init__(self, f) -> None:
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, b: bytes) -> int:
        self.f.write(b)
        self.sha.update(b)
        self.size += len(b)
        return len(b)

    def flush(self) -> None:
        pass


def read_frames(f) -> Iterator[bytes]:
    """Whole framed records (header, data, CRC) from a TFRecord stream, unparsed."""
    while header := f.read(12):
        if len(header) < 12:
            raise ValueError("truncated TFRecord header")
        (length,) = struct.unpack("<Q", header[:8])
        body = f.read(length + 4)
        if len(body) < length + 4:
            raise ValueError("truncated TFRecord record")
        yield header + body


def interleave_records(pieces: list[Piece], rng: np.random.Generator, *, group: int = MAX_OPEN_PIECES) -> Iterator[bytes]:
    """Records of all pieces in a seeded random order, drawn in proportion to what is left.

    Plain concatenation would put one unit's windows (one time chunk) first in every
    shard, so the start of an epoch would see only early times. At most `group` piece
    files are open at once; groups are taken in random order.
    """
    order = sorted(pieces, key=lambda p: p.path)
    order = [order[i] for i in rng.permutation(len(order))]
    for g in range(0, len(order), group):
        members = order[g : g + group]
        files = [FileSystems.open(p.path, compression_type=CompressionTypes.UNCOMPRESSED) for p in members]
        try:
            streams = [read_frames(f) for f in files]
            # records left per piece, estimated from windows (blocks are near-equal)
            left = np.array([max(1, p.windows) for p in members], dtype=np.float64)
            live = list(range(len(members)))
            while live:
                w = left[live] / left[live].sum()
                i = live[int(rng.choice(len(live), p=w))]
                rec = next(streams[i], None)
                if rec is None:
                    live.remove(i)
                    continue
                left[i] = max(left[i] - _windows_in(rec, members[i]), 1e-9)
                yield rec
        finally:
            for f in files:
                f.close()


def _windows_in(rec: bytes, piece: Piece) -> float:
    # Proportional draw only needs an estimate: bytes of this record over the piece's bytes.
    return piece.windows * len(rec) / max(piece.bytes, 1)


def concat_pieces(pieces: list[Piece], dest: str, *, compression: str, seed: int) -> tuple[int, str]:
    """Interleave piece files into `dest` (GZIP-compressing if asked); (bytes, sha256)."""
    rng = np.random.default_rng(seed)
    with FileSystems.create(dest, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        hw = _HashingWriter(raw)
        out = gzip.GzipFile(fileobj=hw, mode="wb", compresslevel=6, mtime=0) if compression == "gzip" else hw
        for rec in interleave_records(pieces, rng):
            out.write(rec)
        if compression == "gzip":
            out.close()
    return hw.size, hw.sha.hexdigest()


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
    stale_staging = [
        p for p in _list(FileSystems.join(output, ".seqscale-staging-*")) if not p.startswith(staging)
    ]
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
