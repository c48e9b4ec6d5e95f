"""series_scaling.json: each series' own center and scale (`--scale-by series`).

Long-format tables often hold series on very different levels (a shop selling 10 units a
day beside one selling 10,000): one global scaler leaves the small ones flat near a
constant and lets the big ones dominate the loss. With `--scale-by series` the job
computes the training statistics per series (a keyed combine) and scales each series with
its own; this side file (beside metadata.json, committed with it, one row per series, so
a million series do not bloat the manifest every worker reads) holds them, and the
evaluation and the export invert per series with it.

Series without training rows (they start in validation or test), and columns that are
constant within a series, use the global statistics (`fallback`), and the job counts them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from contract.records import series_id

SERIES_SCALING_NAME = "series_scaling.json"


@dataclass(frozen=True)
class SeriesScaling:
    """Per-series center/scale of every column; scaled = (raw - center) / scale."""

    columns: tuple[str, ...]
    names: tuple[str, ...]  # series keys, sorted
    center: np.ndarray  # [S, C]
    scale: np.ndarray  # [S, C]
    count: np.ndarray  # [S] training rows per series
    fallback_center: np.ndarray  # [C] global, for series without training rows
    fallback_scale: np.ndarray  # [C]

    # Built once per object, not per call: the job scales every work unit with the same table,
    # and with very many series rebuilding a name index or stacking the table per unit would
    # cost O(series) each time.
    @cached_property
    def _row_of_name(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    @cached_property
    def _row_of_id(self) -> dict[int, int]:
        return {series_id(n): i for i, n in enumerate(self.names)}

    @cached_property
    def _full(self) -> tuple[np.ndarray, np.ndarray]:
        """[S+1, C] center and scale of every column, the global fallback as the last row."""
        return (np.vstack([self.center.reshape(-1, len(self.columns)), self.fallback_center[None]]),
                np.vstack([self.scale.reshape(-1, len(self.columns)), self.fallback_scale[None]]))

    def rows_of_names(self, names) -> np.ndarray:
        """Row of each series key in `table` (len(names) = the fallback row for unknown series)."""
        where, fallback = self._row_of_name, len(self.names)
        return np.array([where.get(str(n), fallback) for n in names], dtype=np.int64)

    def rows_of_ids(self, sids) -> np.ndarray:
        """Row of each window's series id (the int64 hash stored in the shards)."""
        where, fallback = self._row_of_id, len(self.names)
        return np.array([where.get(int(s), fallback) for s in np.asarray(sids).ravel()], dtype=np.int64)

    def table(self, columns) -> tuple[np.ndarray, np.ndarray]:
        """([S+1, k] center, [S+1, k] scale) of `columns`; the last row is the global fallback."""
        idx = [self.columns.index(c) for c in columns]
        return self._full[0][:, idx], self._full[1][:, idx]

    def gather(self, rows: np.ndarray, columns) -> tuple[np.ndarray, np.ndarray]:
        """([n, k] center, [n, k] scale) of `columns` at table rows `rows` (from rows_of_names/ids)."""
        idx = [self.columns.index(c) for c in columns]
        return self._full[0][rows][:, idx], self._full[1][rows][:, idx]

    def to_json(self) -> str:
        return json.dumps({
            "columns": list(self.columns),
            "fallback": {"center": self.fallback_center.tolist(), "scale": self.fallback_scale.tolist()},
            "series": [{"name": n, "count": int(c), "center": ce.tolist(), "scale": sc.tolist()}
                       for n, c, ce, sc in zip(self.names, self.count, self.center, self.scale, strict=True)],
        }, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SeriesScaling:
        d = json.loads(text)
        s = d["series"]
        n = len(d["columns"])
        return cls(
            columns=tuple(d["columns"]), names=tuple(r["name"] for r in s),
            center=np.array([r["center"] for r in s], dtype=np.float64).reshape(len(s), n),
            scale=np.array([r["scale"] for r in s], dtype=np.float64).reshape(len(s), n),
            count=np.array([r["count"] for r in s], dtype=np.int64),
            fallback_center=np.array(d["fallback"]["center"], dtype=np.float64),
            fallback_scale=np.array(d["fallback"]["scale"], dtype=np.float64),
        )
