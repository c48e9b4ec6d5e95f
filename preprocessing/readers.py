"""Read CSV and Parquet files (local or gs://) with pyarrow into normalized row batches.

A normalized batch is a pyarrow Table with fixed internal columns: `time` (int64
ticks), `series` (string, when the spec has a series column), `file` (int32 index
into the sorted input list), `row` (int64, 0-based data row in that file) and `v0..vK`
(float64, the spec's `columns` in order: the file's, then the calendar's, computed here from
the time). Positional value names keep user column
names (which may be anything, e.g. `../x`) out of internal schemas. File and row ride
along so that any later error can name where a bad row came from.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from contract import calendar
from preprocessing.errors import InputError
from preprocessing.options import JobConfig

BATCH_ROWS = 65_536
CSV_BLOCK_BYTES = 8 << 20
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst", ".tsv", ".txt")


def file_format(path: str) -> str:
    low = path.lower()
    if low.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if low.endswith(CSV_SUFFIXES):
        return "csv"
    raise InputError(f"{path}: unknown file type; name CSV files *.csv and Parquet files *.parquet")


def row_label(path: str, row: int, fmt: str | None = None) -> str:
    """Human location of a 0-based data row: CSV lines count the header as line 1."""
    fmt = fmt or file_format(path)
    if fmt == "csv":
        return f"{path} row {row + 1} (line {row + 2})"
    return f"{path} row {row + 1}"


def value_name(i: int) -> str:
    return f"v{i}"


CSV_CODECS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}


def open_input(path: str) -> BinaryIO:
    """An input file, local or gs://; a compressed CSV (by its suffix) is decompressed by pyarrow.

    Beam's own decompressing reader (CompressedFile) cannot be handed to pyarrow: its `closed`
    is a method, so pyarrow takes every such file for closed.
    """
    raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    codec = next((c for suffix, c in CSV_CODECS.items() if path.lower().endswith(suffix)), None)
    return pa.CompressedInputStream(raw, codec) if codec and file_format(path) == "csv" else raw


def _csv_batches(path: str, cfg: JobConfig) -> Iterator[pa.RecordBatch]:
    # Numeric columns are parsed as float64 by pyarrow (its converter trims spaces; the
    # default null markers such as "" and "NA" become NaN), and the time column's type is
    # inferred from the first block. pyarrow's conversion errors name no row, so on one the
    # file is read again as strings and converted by us, which names the row.
    try:
        with open_input(path) as f:
            yield from _csv_reader(f, path, cfg)
    except _NotConverted as e:
        offset, time_type = 0, e.args[1]
        with open_input(path) as f:
            for batch in _csv_reader(f, path, cfg, as_strings=True):  # each check raises at its bad row
                _check_inferred_time(batch.column(cfg.time_column), time_type, path=path, first_row=offset, cfg=cfg)
                for name in cfg.file_columns:
                    _to_float(batch.column(name), path=path, first_row=offset, name=name)
                offset += batch.num_rows
        raise InputError(f"{path}: {e.args[0]}; fix that value of the file") from None


class _NotConverted(Exception):
    """pyarrow could not convert a value of a typed column (its message names no row).
    args: (pyarrow's message, the time column's type as inferred from the first block or None)."""


def _check_inferred_time(col, time_type: pa.DataType | None, *, path: str, first_row: int, cfg: JobConfig) -> None:
    """Raise at the first time value (read as a string) that pyarrow cannot convert to the type it
    inferred from the file's first block (a timestamp or an integer)."""
    if time_type is None or pa.types.is_string(time_type):
        return
    try:
        pc.cast(col, time_type)
    except pa.ArrowInvalid:
        bad = _first_uncastable(col, time_type)
        hint = ("not ISO-8601 like the rows before it; pass --time-format" if pa.types.is_timestamp(time_type)
                else f"not {time_type} like the rows before it")
        raise InputError(f"{row_label(path, first_row + bad)}: time column {cfg.time_column!r} has "
                         f"{col[bad].as_py()!r} ({hint})") from None


def _csv_reader(f: BinaryIO, path: str, cfg: JobConfig, *, as_strings: bool = False) -> Iterator[pa.RecordBatch]:
    types = {c: pa.string() if as_strings else pa.float64() for c in cfg.file_columns}
    if cfg.series_column:
        types[cfg.series_column] = pa.string()
    if cfg.time_format or as_strings:
        types[cfg.time_column] = pa.string()
    needed = [cfg.time_column, *([cfg.series_column] if cfg.series_column else []), *cfg.file_columns]
    try:
        reader = pacsv.open_csv(
            f,
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(delimiter="\t" if path.lower().endswith(".tsv") else ","),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )
    except pa.ArrowInvalid as e:
        if "Empty CSV file" in str(e):
            return
        if "conversion error" in str(e):
            raise _NotConverted(str(e), None) from None
        raise InputError(f"{path}: cannot read as CSV ({e}); check the delimiter and header line") from e
    present = reader.schema.names
    _check_columns(path, present, needed)
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except pa.ArrowInvalid as e:
            if "conversion error" in str(e):
                raise _NotConverted(str(e), reader.schema.field(cfg.time_column).type) from None
            raise InputError(f"{path}: malformed CSV ({e}); fix that line of the file") from e
        yield batch.select(needed)


def _parquet_batches(f: BinaryIO, path: str, cfg: JobConfig) -> Iterator[pa.RecordBatch]:
    try:
        pf = pq.ParquetFile(f)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}: not a readable Parquet file ({e}); it may be truncated or corrupt, re-export it") from e
    needed = [cfg.time_column, *([cfg.series_column] if cfg.series_column else []), *cfg.file_columns]
    _check_columns(path, pf.schema_arrow.names, needed)
    try:
        yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=needed)
    except (pa.ArrowInvalid, OSError) as e:
        raise InputError(f"{path}: Parquet data cannot be decoded ({e}); the file may be truncated, re-export it") from e


def _check_columns(path: str, present: list[str], needed: list[str]) -> None:
    for col in needed:
        if col not in present:
            raise InputError(
                f"{path}: column {col!r} is missing (the file has {present}); fix the spec's column names "
                "or the file"
            )


def raw_batches(path: str, cfg: JobConfig) -> Iterator[pa.RecordBatch]:
    """Record batches of the spec's columns, in file order (the file is opened and closed here)."""
    if file_format(path) == "parquet":
        with open_input(path) as f:
            yield from _parquet_batches(f, path, cfg)
    else:
        yield from _csv_batches(path, cfg)


def to_ticks(col: pa.ChunkedArray | pa.Array, *, path: str, first_row: int, cfg: JobConfig) -> tuple[np.ndarray, str]:
    """Time column -> (int64 ticks, kind): ns since epoch for timestamps, else the integer."""
    name = cfg.time_column
    if col.null_count:
        i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InputError(f"{row_label(path, first_row + i)}: time column {name!r} is empty; every row needs a time")
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            if cfg.time_format:
                col = pc.strptime(col, format=cfg.time_format, unit="ns")
            else:
                col = pc.cast(col, pa.timestamp("ns"))
        except pa.ArrowInvalid:
            bad = _first_bad(col, lambda s: np.datetime64(s) if not cfg.time_format else _strptime(s, cfg.time_format))
            hint = f"--time-format {cfg.time_format!r} does not match" if cfg.time_format else "not ISO-8601; pass --time-format"
            raise InputError(
                f"{row_label(path, first_row + bad)}: time column {name!r} has {col[bad].as_py()!r} ({hint})"
            ) from None
        t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        col = pc.cast(col, pa.timestamp("ns", tz=getattr(t, "tz", None)))
        return col.cast(pa.int64()).to_numpy(zero_copy_only=False), "timestamp"
    if pa.types.is_integer(t):
        return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False), "integer"
    raise InputError(
        f"{path}: time column {name!r} has type {t}; use timestamps, ISO-8601 strings or integers "
        "(convert fractional times to integer ticks)"
    )


def _strptime(s: str, fmt: str):
    import datetime

    return datetime.datetime.strptime(s, fmt)


def _first_bad(col, parse) -> int:
    for i, v in enumerate(col.to_pylist()):
        if v is None:
            continue
        try:
            parse(v)
        except (ValueError, TypeError):
            return i
    return 0


def _first_uncastable(col, to: pa.DataType) -> int:
    """Index of the first value pyarrow cannot cast (binary search over prefixes: the same parser
    as the failed cast, so the row named is the row that failed)."""
    lo, hi = 0, len(col)  # the first bad index is in [lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            pc.cast(col.slice(0, mid), to)
            lo = mid
        except pa.ArrowInvalid:
            hi = mid
    return lo


def _to_float(col, *, path: str, first_row: int, name: str) -> np.ndarray:
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        col = pc.utf8_trim_whitespace(col)  # spaces around a number are trimmed, as pyarrow's CSV reader does
        try:
            return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            bad = _first_uncastable(col, pa.float64())
            raise InputError(
                f"{row_label(path, first_row + bad)}: column {name!r} has non-numeric value {col[bad].as_py()!r}; "
                "fix the value or mark it missing (empty) and choose --nan-policy"
            ) from None
    raise InputError(f"{path}: column {name!r} has type {t}, expected numbers")


def normalize(batch: pa.RecordBatch, *, path: str, file_index: int, first_row: int, cfg: JobConfig) -> tuple[pa.Table, str]:
    """One raw batch -> normalized table (see module docstring) and the time kind."""
    n = batch.num_rows
    ticks, kind = to_ticks(batch.column(cfg.time_column), path=path, first_row=first_row, cfg=cfg)
    arrays = {"time": pa.array(ticks, pa.int64())}
    if cfg.series_column:
        s = batch.column(cfg.series_column)
        if s.null_count:
            i = int(np.flatnonzero(s.is_null().to_numpy(zero_copy_only=False))[0])
            raise InputError(f"{row_label(path, first_row + i)}: series column {cfg.series_column!r} is empty")
        arrays["series"] = pc.cast(s, pa.string())
    arrays["file"] = pa.array(np.full(n, file_index, np.int32))
    arrays["row"] = pa.array(np.arange(first_row, first_row + n, dtype=np.int64))
    for i, name in enumerate(cfg.file_columns):
        arrays[value_name(i)] = pa.array(_to_float(batch.column(name), path=path, first_row=first_row, name=name))
    if cfg.calendar:
        if kind != "timestamp":
            raise InputError(
                f"{path}: --calendar needs timestamps, but time column {cfg.time_column!r} holds integers; "
                "store the times as timestamps or ISO-8601 strings, or drop --calendar"
            )
        for i, col in enumerate(calendar.matrix(ticks, cfg.calendar).T, start=len(cfg.file_columns)):
            arrays[value_name(i)] = pa.array(col)
    return pa.table(arrays), kind


def values_of(table: pa.Table, ncols: int) -> np.ndarray:
    """The value columns as one float64 [n, C] matrix."""
    if table.num_rows == 0:
        return np.zeros((0, ncols))
    return np.column_stack([table.column(value_name(i)).to_numpy() for i in range(ncols)])


def apply_nan_policy(table: pa.Table, *, paths: list[str], cfg: JobConfig) -> tuple[pa.Table, int]:
    """Fail on, or drop rows with, NaN/inf; ffill rows are kept for the per-series step.

    Returns the table and the number of rows dropped.
    """
    ncols = len(cfg.columns)
    if all(np.isfinite(table.column(value_name(i)).to_numpy()).all() for i in range(ncols)):
        return table, 0  # the usual case, checked column by column without stacking them
    values = values_of(table, ncols)
    bad = ~np.isfinite(values)
    if cfg.nan_policy == "fail":
        r, c = np.argwhere(bad)[0]
        path = paths[table.column("file")[int(r)].as_py()]
        row = table.column("row")[int(r)].as_py()
        v = values[r, c]
        what = "missing (NaN)" if math.isnan(v) else f"{v}"
        raise InputError(
            f"{row_label(path, row)}: column {cfg.columns[c]!r} is {what}; fix the input or pass "
            "--nan-policy drop (drop such rows) or --nan-policy ffill (carry the last value forward)"
        )
    if cfg.nan_policy == "drop":
        keep = ~bad.any(axis=1)
        return table.filter(pa.array(keep)), int((~keep).sum())
    return table, 0
