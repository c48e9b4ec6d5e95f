"""Will a local run fit this machine? An estimate from the input's size and the spec, made in seconds.

The job's memory follows its work unit, not the table (rows travel through staged files, see
staging.py), so a local run needs about BASE + a unit's rows x bytes per unit row in memory per
worker process, and on disk the staged rows and units plus the shards. The constants are
measured (bench_scale, BENCHMARKS.md): a worker's base memory and, per unit row, the bytes the
clean/cut steps hold at their peak; on disk, the Arrow and .npz bytes staged per row.
Pure except `machine()` (what this machine has) and `sample_rows` (reads a few files' heads).
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass

import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from preprocessing.errors import InputError
from preprocessing.options import JobConfig
from preprocessing.readers import file_format

BASE_BYTES = 250 << 20  # one worker process: Python, Beam, pyarrow, numpy
UNIT_ROW_BYTES, UNIT_COLUMN_BYTES = 100, 90  # peak bytes per unit row: + per value column
STAGED_ROW_BYTES, STAGED_COLUMN_BYTES = 65, 12  # rows, fragments and staged units on disk, per input row
LOCAL_RUNNERS = {"fnapirunner", "directrunner", "bundlebaseddirectrunner", "switchingdirectrunner", "prismrunner"}
SAMPLE_FILES, SAMPLE_BYTES = 16, 1 << 20
COMPRESSED_RATIO = 4.0  # text bytes per byte of a compressed CSV (a typical gzip ratio)
MEMORY_SHARE = 0.8  # plan to use at most this share of the available memory


@dataclass(frozen=True)
class Estimate:
    rows: int
    unit_rows: int
    workers: int
    memory: int  # peak bytes of the process tree
    disk: int  # staging + shards, bytes under --output


@dataclass(frozen=True)
class Machine:
    memory: int | None  # bytes available (MemAvailable), None when unknown
    disk: int | None  # free bytes where --output goes, None for object stores


def is_local(runner: str | None) -> bool:
    return (runner or "").lower() in LOCAL_RUNNERS


def estimate(cfg: JobConfig, rows: int, *, workers: int) -> Estimate:
    """Peak memory and disk of a local run over `rows` input rows."""
    spec = cfg.window
    cols = len(cfg.columns)
    unit_rows = min(rows, cfg.chunk_rows) + spec.halo_rows
    memory = workers * (BASE_BYTES + unit_rows * (UNIT_ROW_BYTES + UNIT_COLUMN_BYTES * cols))
    # float32 inputs and targets, plus the window's int64 time and series id
    window_bytes = 4 * (math.prod(spec.x_shape(len(cfg.window_features))) + math.prod(spec.y_shape(len(cfg.targets)))) + 16
    disk = rows * (STAGED_ROW_BYTES + STAGED_COLUMN_BYTES * cols) + rows // spec.stride * window_bytes
    return Estimate(rows=rows, unit_rows=unit_rows, workers=workers, memory=memory, disk=disk)


def sample_rows(paths: list[str], sizes: list[int]) -> int:
    """Input rows, from Parquet footers and CSV heads of up to SAMPLE_FILES files, scaled by bytes."""
    seen_rows, seen_bytes = 0, 0
    for path, size in list(zip(paths, sizes, strict=True))[:SAMPLE_FILES]:
        if file_format(path) == "parquet":
            try:
                with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                    seen_rows += pq.ParquetFile(f).metadata.num_rows
            except Exception:  # noqa: BLE001 - the reader reports a broken file with its name
                continue
            seen_bytes += size
        else:
            with FileSystems.open(path) as f:
                head = f.read(SAMPLE_BYTES)
            lines = max(head.count(b"\n") - 1, 1)
            compressed = not path.lower().endswith((".csv", ".tsv", ".txt"))
            text_bytes = size * COMPRESSED_RATIO if compressed else size
            seen_rows += int(lines * text_bytes / max(len(head), 1))
            seen_bytes += size
    total = sum(sizes)
    return int(seen_rows * total / seen_bytes) if seen_bytes else 0


def machine(output: str) -> Machine:
    """Memory available now (Linux /proc/meminfo) and free disk where `output` goes (local paths)."""
    memory = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    memory = int(line.split()[1]) * 1024
    except OSError:
        pass
    disk = None
    if "://" not in output:
        probe = os.path.abspath(output)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        disk = shutil.disk_usage(probe).free
    return Machine(memory=memory, disk=disk)


def gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check(est: Estimate, have: Machine, cfg: JobConfig) -> None:
    """Refuse a local run that cannot fit, with the estimate, what the machine has, and the fix."""
    if have.memory is not None and est.memory > MEMORY_SHARE * have.memory:
        raise InputError(
            f"this local run needs about {gb(est.memory)} of memory ({est.workers} worker(s), each holding a work "
            f"unit of about {est.unit_rows:,} rows x {len(cfg.columns)} columns) but the machine has "
            f"{gb(have.memory)} available; lower --chunk-rows, use fewer --direct_num_workers, or run on a "
            "cluster (--runner DataflowRunner); --no-capacity-check skips this estimate"
        )
    if have.disk is not None and est.disk > have.disk:
        raise InputError(
            f"this local run needs about {gb(est.disk)} of disk under {cfg.output} (staged rows for about "
            f"{est.rows:,} input rows, and the shards) but only {gb(have.disk)} is free; raise --stride, use fewer "
            "--features, give a time range of the input, choose an --output with more room, or run on a cluster "
            "(--runner DataflowRunner with a gs:// --output); --no-capacity-check skips this estimate"
        )


def check_local_run(cfg: JobConfig, paths: list[str], sizes: list[int], *, workers: int) -> Estimate:
    """The whole check before a local run: estimate, compare, raise InputError when it cannot fit."""
    est = estimate(cfg, sample_rows(paths, sizes), workers=workers)
    check(est, machine(cfg.output), cfg)
    return est
