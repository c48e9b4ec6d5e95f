"""Small normalized tables, plans and units for the pure-module and PTransform tests."""

import numpy as np
import pandas as pd
import pyarrow as pa

from preprocessing import readers
from preprocessing.clean import clean_unit
from preprocessing.options import JobConfig

HOUR = 3_600_000_000_000


def frame(n=300, series=("a", "b"), seed=0) -> pd.DataFrame:
    """Hourly series with distinct starts; x = a sine, y = a shifted sine + series offset."""
    rng = np.random.default_rng(seed)
    parts = []
    for i, name in enumerate(series):
        t = pd.date_range(f"2022-01-0{i + 1}", periods=n, freq="h")
        k = np.arange(n)
        parts.append(pd.DataFrame({"ts": t, "series": name, "x": np.sin(k / 5) + rng.normal(size=n) * 0.1,
                                   "y": np.sin((k + 2) / 5) + 10 * i}))
    return pd.concat(parts, ignore_index=True)


def config(**kw) -> JobConfig:
    base = dict(input=("in",), output="out", time_column="ts", series_column="series", features=("x", "y"),
                targets=("y",), look_back=6, horizon=2, train_shards=3, eval_shards=2, chunk_rows=100)
    base.update(kw)
    return JobConfig(**base)


def tables(df: pd.DataFrame, cfg: JobConfig, parts: int = 3, seed: int = 0) -> list[pa.Table]:
    """The frame shuffled and cut into `parts` normalized batches (as ReadTables yields them)."""
    df = df.sample(frac=1, random_state=seed).reset_index(drop=True)
    out = []
    for i, chunk in enumerate(np.array_split(np.arange(len(df)), parts)):
        batch = pa.RecordBatch.from_pandas(df.iloc[chunk].reset_index(drop=True), preserve_index=False)
        table, kind = readers.normalize(batch, path=f"f{i}", file_index=i, first_row=0, cfg=cfg)
        out.append(table.replace_schema_metadata({"kind": kind}))
    return out


def unit_of(df: pd.DataFrame, cfg: JobConfig, max_gap: int = int(1.5 * HOUR)):
    """All rows as one owned, cleaned Unit."""
    table = pa.concat_tables([t.replace_schema_metadata(None) for t in tables(df, cfg, parts=1)])
    table = table.append_column("owned", pa.array(np.ones(table.num_rows, bool)))
    unit, _ = clean_unit((0, 0), table, ncols=len(cfg.columns), duplicates="fail", nan_policy="fail",
                         ffill_limit=1, max_gap=max_gap, time_kind="timestamp", paths=["f0"])
    return unit


def rows_files(parts: list[pa.Table], directory, part_rows: int = 1_000_000) -> list:
    """Normalized tables staged as the reader stages them (one RowsFile per table)."""
    from preprocessing.staging import RowsWriter

    out = []
    for i, table in enumerate(parts):
        writer = RowsWriter(str(directory), i, part_rows)
        out += [r for r in (writer.add(table), writer.close()) if r is not None]
    return out


def unit_fragments(df: pd.DataFrame, cfg: JobConfig, plan, directory) -> list:
    """(unit key, fragments) of every unit, as KeyByUnit + GroupByKey make them."""
    from preprocessing.staging import read_table, split_by_unit

    grouped: dict = {}
    for r in rows_files(tables(df, cfg, parts=3), directory):
        frag_path = r.path.replace(".arrow", ".frags.arrow")
        for key, frag in split_by_unit(r.path, read_table(r.path), plan, frag_path):
            grouped.setdefault(key, []).append(frag)
    return sorted(grouped.items())
