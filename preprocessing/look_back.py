"""`--look-back auto`: the window length from the data's time step, chosen before the job runs.

The window's length shapes the whole job (halo rows, window counts, the record layout), so it
must be known when the pipeline is built. The time step is read from the first rows of the
first input files (their time and series columns, HEAD_ROWS rows at most): the same typical
step the job's own scan finds (plan.ScanAccumulator), on a head instead of every row. The season
of that step and the look-back it gives are contract.seasons' (a season and a row: 25 hourly
rows, 8 daily; 24 where the step names no season, e.g. an integer time column).
"""

from __future__ import annotations

import dataclasses
import logging

from contract.seasons import auto_look_back, season_length
from preprocessing import readers
from preprocessing.options import AUTO_LOOK_BACK, JobConfig
from preprocessing.plan import ScanAccumulator

log = logging.getLogger(__name__)
HEAD_ROWS = 100_000
HEAD_FILES = 8


def head_step(cfg: JobConfig, paths: list[str]) -> tuple[str | None, int]:
    """(time kind, typical step within series) of the first HEAD_ROWS rows, combined by the job's
    own scan (plan.ScanAccumulator); (kind, 0) when no series has two rows there."""
    acc, seen = ScanAccumulator(), 0
    for index, path in enumerate(paths[:HEAD_FILES]):
        offset = 0  # rows of this file so far: errors name the file's own row
        for batch in readers.raw_batches(path, cfg):
            if batch.num_rows == 0:
                continue
            batch = batch.slice(0, HEAD_ROWS - seen)
            table, kind = readers.normalize(batch, path=path, file_index=index, first_row=offset, cfg=cfg)
            acc.add(table.replace_schema_metadata({"kind": kind}))
            offset += batch.num_rows
            seen += batch.num_rows
            if seen >= HEAD_ROWS:
                break
        if seen >= HEAD_ROWS:
            break
    if not acc.rows:
        return None, 0
    scan = acc.result(paths)
    return scan.kind, int(scan.step) if acc.steps else 0


def resolve(cfg: JobConfig, paths: list[str]) -> JobConfig:
    """`cfg` with `--look-back auto` replaced by the rows it stands for (and why, in look_back_source)."""
    if cfg.look_back != AUTO_LOOK_BACK:
        return cfg
    kind, step = head_step(cfg, paths)
    look_back, why = auto_look_back(season_length(kind or "", step))
    source = f"auto: {why}" + (f" (time step {_duration(step)} in the first rows)" if kind == "timestamp" and step
                               else "")
    log.info("seqscale: --look-back auto: %d rows, %s", look_back, source.removeprefix("auto: "))
    return dataclasses.replace(cfg, look_back=look_back, look_back_source=source)


def _duration(ns: int) -> str:
    for unit, size in (("d", 86_400_000_000_000), ("h", 3_600_000_000_000), ("min", 60_000_000_000), ("s", 10**9)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns} ns"
