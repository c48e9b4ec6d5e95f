"""Rows staged as Arrow IPC files, so no stage of the job holds the table in memory.

Beam runners keep a PCollection that waits for a side input, and a GroupByKey's buffer, in
memory on the local runner (FnApiRunner), so passing row batches between the read, the plan
and the work units held the whole table several times over (about 500 bytes per input row).
Here the rows travel through files instead, and PCollections carry only small references:

- the reader writes its normalized rows to `rows/f{file}-{part}.arrow` (at most `chunk_rows`
  rows each) and emits a `RowsFile` (path, rows, the scan of its time column);
- once the plan is known, each rows file is split by work unit, emitting (unit key, `Fragment`).
  A unit's rows that are one run of the rows file (a file sorted by time, one time chunk of it)
  are referenced in place, as a row range; the others are copied into one fragment file with
  one record batch per unit (`frags/f{file}-{part}.arrow`);
- a unit groups its fragments' references and reads those rows only.

So a worker holds one file part or one unit, whatever the table's size. Every file name is
derived from the input file and part, so a retried bundle rewrites the same files. All access
goes through Beam's FileSystems (local paths and gs:// alike).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from preprocessing.plan import Plan, ScanAccumulator, unit_part, unit_rows

RAW = CompressionTypes.UNCOMPRESSED


@dataclass(frozen=True)
class RowsFile:
    """One staged part of an input file: normalized rows, and the scan of their time column."""

    path: str
    rows: int
    scan: ScanAccumulator


@dataclass(frozen=True, order=True)
class Fragment:
    """The rows of one work unit inside one staged file.

    `start` -1: record batch `index` of a fragment file, with its `owned` column. Otherwise a
    row range read in place: `rows` rows of the rows file at `path` from row `start` of its
    record batch `index` on, of which rows `owned[0]` .. `owned[1]` are the unit's own (the
    others are halo copies of a neighbouring chunk's rows).
    """

    path: str
    index: int
    rows: int
    start: int = -1
    owned: tuple[int, int] = (0, 0)


def _plain(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata(None)


class RowsWriter:
    """Writes normalized batches of one input file into parts of at most `part_rows` rows."""

    def __init__(self, directory: str, file_index: int, part_rows: int) -> None:
        self.directory, self.file_index, self.part_rows = directory, file_index, part_rows
        self.part, self._f, self._w, self._rows, self._scan, self._schema = 0, None, None, 0, None, None
        self.bytes = 0  # Arrow bytes staged (a progress counter)

    def add(self, table: pa.Table) -> RowsFile | None:
        """Stage one batch; returns the finished part when it reached `part_rows` rows."""
        if self._w is None:
            path = FileSystems.join(self.directory, f"f{self.file_index}-{self.part}.arrow")
            self._f = FileSystems.create(path, compression_type=RAW)
            self._schema = _plain(table).schema
            self._w = pa.ipc.new_file(self._f, self._schema)
            self._path, self._rows, self._scan = path, 0, ScanAccumulator()
        self._scan.add(table)
        self._w.write_table(_plain(table).cast(self._schema))
        self._rows += table.num_rows
        self.bytes += table.nbytes
        return self.close() if self._rows >= self.part_rows else None

    def close(self) -> RowsFile | None:
        """Finish the open part (if any) and return it."""
        if self._w is None:
            return None
        self._w.close()
        self._f.close()
        done = RowsFile(self._path, self._rows, self._scan)
        self._w = self._f = None
        self.part += 1
        return done


def read_table(path: str) -> pa.Table:
    """A whole staged rows file."""
    with FileSystems.open(path, compression_type=RAW) as f:
        return pa.ipc.open_file(f).read_all()


def write_fragments(path: str, parts: Iterable[tuple[tuple[int, int], pa.Table]]) -> Iterator[tuple[tuple[int, int], Fragment]]:
    """Write each unit's part as one record batch of the fragment file at `path`; yields (key, Fragment).

    The references are yielded only after the file is closed, so nothing refers to a file
    that is not complete.
    """
    refs = []
    with FileSystems.create(path, compression_type=RAW) as f:
        writer = None
        for key, part in parts:
            part = _plain(part).combine_chunks()
            if writer is None:
                writer = pa.ipc.new_file(f, part.schema)
            batch = part.to_batches()[0] if part.num_rows else pa.RecordBatch.from_pylist([], schema=part.schema)
            writer.write_batch(batch)
            refs.append((key, Fragment(path, len(refs), part.num_rows)))
        if writer is not None:
            writer.close()
    yield from refs


def _in_place(rows: np.ndarray, owned: np.ndarray, batch_starts: np.ndarray) -> tuple[int, int, int, tuple[int, int]] | None:
    """(batch, start in it, rows, owned run) when a unit's rows are one run of the file and its
    owned rows one run inside it (always so for a file sorted by time); else None."""
    lo, hi = int(rows.min()), int(rows.max()) + 1
    if hi - lo != len(rows):  # rows are distinct within a unit, so this is the whole run lo..hi
        return None
    flags = np.zeros(len(rows), dtype=bool)
    flags[rows - lo] = owned
    mine = np.flatnonzero(flags)
    if len(mine) and mine[-1] - mine[0] + 1 != len(mine):
        return None
    run = (int(mine[0]), int(mine[-1]) + 1) if len(mine) else (0, 0)
    batch = int(np.searchsorted(batch_starts, lo, side="right")) - 1
    return batch, lo - int(batch_starts[batch]), len(rows), run


def split_by_unit(rows_path: str, table: pa.Table, plan: Plan, frag_path: str) -> Iterator[tuple[tuple[int, int], Fragment]]:
    """A staged rows file (`table`, read from `rows_path`) -> (unit key, Fragment) of each unit it holds.

    Runs of rows are referenced in place (no copy: on a file sorted by time that is every
    unit); the other units' rows are copied into the fragment file at `frag_path`, which is
    not created when nothing needs it.
    """
    batch_starts = np.cumsum([0, *(len(c) for c in table.column(0).chunks)])[:-1]
    copies = []
    for key, rows, owned in unit_rows(table, plan):  # every unit holds at least one row
        if (where := _in_place(rows, owned, batch_starts)) is not None:
            batch, start, n, run = where
            yield key, Fragment(rows_path, batch, n, start, run)
        else:
            copies.append((key, rows, owned))
    if copies:
        yield from write_fragments(frag_path, ((key, unit_part(table, rows, owned)) for key, rows, owned in copies))


def _range_batches(reader: pa.ipc.RecordBatchFileReader, frag: Fragment) -> Iterator[pa.RecordBatch]:
    """The record batches of a row-range fragment, sliced to it, with its `owned` column."""
    index, skip, left, done = frag.index, frag.start, frag.rows, 0
    owned = np.zeros(frag.rows, dtype=bool)
    owned[frag.owned[0]:frag.owned[1]] = True
    while left > 0:
        batch = reader.get_batch(index).slice(skip)
        batch = batch.slice(0, min(left, batch.num_rows))
        yield pa.RecordBatch.from_arrays([*batch.columns, pa.array(owned[done:done + batch.num_rows])],
                                         names=[*batch.schema.names, "owned"])
        index, skip, left, done = index + 1, 0, left - batch.num_rows, done + batch.num_rows


def read_fragments(fragments: Iterable[Fragment]) -> pa.Table:
    """One unit's rows: its record batch from each fragment file, or its row range of each rows
    file (in a fixed order)."""
    batches = []
    for frag in sorted(fragments):
        with FileSystems.open(frag.path, compression_type=RAW) as f:
            reader = pa.ipc.open_file(f)
            if frag.start < 0:
                batches.append(reader.get_batch(frag.index))
            else:
                batches.extend(_range_batches(reader, frag))
    return pa.Table.from_batches(batches)
