"""Rows staged as Arrow IPC files, so no stage of the job holds the table in memory.

Beam runners keep a PCollection that waits for a side input, and a GroupByKey's buffer, in
memory on the local runner (FnApiRunner), so passing row batches between the read, the plan
and the work units held the whole table several times over (about 500 bytes per input row).
Here the rows travel through files instead, and PCollections carry only small references:

- the reader writes its normalized rows to `rows/f{file}-{part}.arrow` (at most `chunk_rows`
  rows each) and emits a `RowsFile` (path, rows, the scan of its time column);
- once the plan is known, each rows file is split by work unit into one fragment file with
  one record batch per unit (`frags/f{file}-{part}.arrow`), emitting (unit key, `Fragment`);
- a unit groups its fragments' references and reads those record batches only.

So a worker holds one file part or one unit, whatever the table's size. Every file name is
derived from the input file and part, so a retried bundle rewrites the same files. All access
goes through Beam's FileSystems (local paths and gs:// alike).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from preprocessing.plan import ScanAccumulator

RAW = CompressionTypes.UNCOMPRESSED


@dataclass(frozen=True)
class RowsFile:
    """One staged part of an input file: normalized rows, and the scan of their time column."""

    path: str
    rows: int
    scan: ScanAccumulator


@dataclass(frozen=True, order=True)
class Fragment:
    """The rows of one work unit inside one fragment file (record batch `index`)."""

    path: str
    index: int
    rows: int


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


def read_fragments(fragments: Iterable[Fragment]) -> pa.Table:
    """One unit's rows: its record batch from each fragment file (in a fixed order)."""
    batches = []
    for frag in sorted(fragments):
        with FileSystems.open(frag.path, compression_type=RAW) as f:
            batches.append(pa.ipc.open_file(f).get_batch(frag.index))
    return pa.Table.from_batches(batches)
