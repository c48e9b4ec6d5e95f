"""metadata.json: the typed manifest that is the contract between preprocessing and training.

Written by the Beam job last, atomically, after every shard is complete; read by the
trainer, the doctor, the evaluation and the export. Every part is a frozen dataclass
(no free-form dicts), each fact is stored once (the window geometry only in `window`;
record shapes are derived from it), and `from_json` rejects unknown format versions so
an old trainer never misreads a new dataset (version 3 added calendar features, per-series
scaling and backtest shards; an older seqscale refuses it by its version, not by a field).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from contract import calendar
from contract.records import BACKTEST, ENCODING, SPLITS
from contract.window import WindowSpec

FORMAT_VERSION = 3  # 3 added spec.calendar, scale_by and backtest shards
READABLE_VERSIONS = (2, 3)  # a version-2 manifest reads as version 3 with the defaults (no calendar, global)
MANIFEST_NAME = "metadata.json"
# beside a trainer's export: the dataset's manifest, and what its score mode needs of the training data
EXPORT_MANIFEST_NAME = "seqscale_manifest.json"
EXPORT_EVALUATION_NAME = "seqscale_evaluation.json"


class ManifestError(ValueError):
    """metadata.json is missing, malformed or of an unknown version."""


@dataclass(frozen=True)
class DatasetSpec:
    """What the columns mean (the user's dataset spec)."""

    time_column: str
    features: tuple[str, ...]
    targets: tuple[str, ...]
    series_column: str | None = None
    task: str = "regression"  # regression | binary | multiclass
    num_classes: int | None = None  # 2 for binary, K for multiclass
    calendar: tuple[str, ...] = ()  # calendar parts; their sin/cos columns end `features`

    @property
    def calendar_columns(self) -> tuple[str, ...]:
        return calendar.column_names(self.calendar)

    @property
    def file_features(self) -> tuple[str, ...]:
        """The features a raw row carries (the calendar's are computed from its time)."""
        return self.features[: len(self.features) - len(self.calendar_columns)]

    @property
    def columns(self) -> tuple[str, ...]:
        """Numeric columns: features then targets, each once."""
        return tuple(dict.fromkeys((*self.features, *self.targets)))


@dataclass(frozen=True)
class Boundaries:
    """Split boundaries in time ticks (ns for timestamps, the integer for integer time)."""

    val_start: int
    test_start: int

    def split_of(self, times: np.ndarray) -> np.ndarray:
        """0 (train), 1 (val) or 2 (test) for each time."""
        return np.searchsorted(np.array([self.val_start, self.test_start]), times, side="right").astype(np.int8)


@dataclass(frozen=True)
class ShardInfo:
    """One shard file, relative to the dataset directory."""

    file: str
    windows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ColumnInfo:
    """Training-range statistics of one column and the scaling applied to it.

    scaled = (raw - center) / scale; an unscaled column has center 0 and scale 1.
    """

    name: str
    count: int
    mean: float
    std: float
    min: float
    max: float
    center: float
    scale: float
    scaled: bool
    quantiles: dict[str, float] | None = None


@dataclass(frozen=True)
class Counts:
    """What happened to the rows and windows (nothing is dropped without a count)."""

    rows_read: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    rows_rejected: int = 0
    rows_per_split: dict[str, int] = field(default_factory=dict)
    windows: dict[str, int] = field(default_factory=dict)
    windows_dropped: dict[str, int] = field(default_factory=dict)
    segments_too_short: int = 0
    rows_in_short_segments: int = 0
    short_segment_gap_steps: dict[str, int] = field(default_factory=dict)  # gap to join them (steps) -> rows
    values_forward_filled: int = 0
    rows_scaled_with_global_stats: int = 0  # --scale-by series: rows of series without training rows
    empty_files: int = 0
    files: int = 0
    units: int = 0

    @classmethod
    def from_flat(cls, counts: Mapping[str, int], *, windows: dict[str, int], units: int) -> Counts:
        """From the job's summed counters ("rows_dropped.reason", "rows.train", ...)."""
        dropped = {k.split(".", 1)[1]: int(v) for k, v in counts.items() if k.startswith("rows_dropped.") and v}
        return cls(
            rows_read=int(counts.get("rows_read", 0)),
            rows_dropped=dropped,
            rows_rejected=int(sum(dropped.values())),
            rows_per_split={s: int(counts.get(f"rows.{s}", 0)) for s in SPLITS},
            windows=windows,
            windows_dropped={"crosses_split_boundary": int(counts.get("windows_dropped.crosses_split_boundary", 0))},
            segments_too_short=int(counts.get("segments_too_short", 0)),
            rows_in_short_segments=int(counts.get("rows_in_short_segments", 0)),
            short_segment_gap_steps={k.split(".", 1)[1]: int(v) for k, v in sorted(counts.items())
                                     if k.startswith("short_segment_gap_steps.") and v},
            values_forward_filled=int(counts.get("values_forward_filled", 0)),
            rows_scaled_with_global_stats=int(counts.get("rows_scaled_with_global_stats", 0)),
            empty_files=int(counts.get("empty_files", 0)),
            files=int(sum(v for k, v in counts.items() if k.startswith("files_read."))),
            units=int(units),
        )


@dataclass(frozen=True)
class Encoding:
    """How windows are stored in the shards (shapes follow from the WindowSpec)."""

    name: str = ENCODING
    block_size: int = 256
    compression: str = "none"  # none | gzip
    dtype: str = "float32"
    byte_order: str = "little"


@dataclass(frozen=True)
class Manifest:
    """Everything the trainer needs to know about a dataset directory."""

    format_version: int
    created: str
    spec: DatasetSpec
    window: WindowSpec
    time_kind: str  # "timestamp" (ticks are ns since epoch) or "integer"
    time_range: tuple[int, int]
    step: int
    max_gap: int
    split_boundaries: Boundaries
    scaler: str
    columns: tuple[ColumnInfo, ...]  # features then targets (each column once)
    shards: dict[str, tuple[ShardInfo, ...]]
    counts: Counts
    encoding: Encoding
    scale_by: str = "global"  # "series": each series' own center/scale, in series_scaling.json
    options: dict[str, Any] = field(default_factory=dict)  # the job's other options, for provenance
    extra: dict[str, Any] = field(default_factory=dict)

    # the spec's fields, read everywhere
    @property
    def features(self) -> tuple[str, ...]:
        return self.spec.features

    @property
    def targets(self) -> tuple[str, ...]:
        return self.spec.targets

    @property
    def task(self) -> str:
        return self.spec.task

    @property
    def num_classes(self) -> int | None:
        return self.spec.num_classes

    @property
    def time_column(self) -> str:
        return self.spec.time_column

    @property
    def calendar(self) -> tuple[str, ...]:
        return self.spec.calendar

    @property
    def file_features(self) -> tuple[str, ...]:
        return self.spec.file_features

    @property
    def series_column(self) -> str | None:
        return self.spec.series_column

    @property
    def x_shape(self) -> tuple[int, int]:
        return self.window.x_shape(len(self.features))

    @property
    def y_shape(self) -> tuple[int, int]:
        return self.window.y_shape(len(self.targets))

    @property
    def target_positions(self) -> tuple[int, ...] | None:
        """Each target's column in the windows' inputs; None when a target is not an input (its
        past is not in the window: no persistence baseline, no linear skip)."""
        if not all(t in self.features for t in self.targets):
            return None
        return tuple(self.features.index(t) for t in self.targets)

    def windows(self, split: str) -> int:
        return sum(s.windows for s in self.shards.get(split, ()))

    def column(self, name: str) -> ColumnInfo:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @staticmethod
    def column_infos(names, *, count: int, mean, std, minimum, maximum, center, scale,
                     quantiles: dict[str, np.ndarray] | None) -> tuple[ColumnInfo, ...]:
        """Per-column ColumnInfo from per-column arrays (statistics and the scaling applied)."""
        return tuple(
            ColumnInfo(
                name=c, count=int(count), mean=float(mean[i]), std=float(std[i]), min=float(minimum[i]),
                max=float(maximum[i]), center=float(center[i]), scale=float(scale[i]),
                scaled=bool(scale[i] != 1.0 or center[i] != 0.0),
                quantiles=None if quantiles is None else {k: float(v[i]) for k, v in quantiles.items()},
            )
            for i, c in enumerate(names)
        )

    @classmethod
    def build(cls, *, created: str, spec: DatasetSpec, window: WindowSpec, time_kind: str,
              time_range: tuple[int, int], step: int, max_gap: int, boundaries: Boundaries, scaler: str,
              columns: tuple[ColumnInfo, ...], shards: dict[str, tuple[ShardInfo, ...]],
              counts: Mapping[str, int], units: int, encoding: Encoding,
              options: dict[str, Any] | None = None, scale_by: str = "global") -> Manifest:
        """Assemble the manifest from the job's results (summed counters, shard infos)."""
        sets = SPLITS + ((BACKTEST,) if shards.get(BACKTEST) else ())  # the backtest only when written
        windows = {s: sum(i.windows for i in shards.get(s, ())) for s in sets}
        return cls(
            format_version=FORMAT_VERSION, created=created, spec=spec, window=window, time_kind=time_kind,
            time_range=(int(time_range[0]), int(time_range[1])), step=int(step), max_gap=int(max_gap),
            split_boundaries=boundaries, scaler=scaler, columns=columns,
            shards={s: tuple(shards.get(s, ())) for s in sets},
            counts=Counts.from_flat(counts, windows=windows, units=units), encoding=encoding,
            scale_by=scale_by, options=dict(options or {}),
        )

    def to_json(self) -> str:
        d = asdict(self)
        if self.time_kind == "timestamp":  # for people reading the file; from_json ignores them
            for name in ("val_start", "test_start"):
                d["split_boundaries"][f"{name}_time"] = str(np.datetime64(d["split_boundaries"][name], "ns"))
        return json.dumps(d, indent=2, sort_keys=False, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = MANIFEST_NAME) -> Manifest:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{source} is not valid JSON ({e}); the dataset is incomplete, rerun preprocessing") from e
        version = d.get("format_version") if isinstance(d, dict) else None
        if version not in READABLE_VERSIONS:
            raise ManifestError(
                f"{source} has format_version {version!r}; this seqscale reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}. "
                "Rerun preprocessing with this version or install the matching seqscale"
            )
        try:
            d["spec"] = DatasetSpec(**{**d["spec"], "features": tuple(d["spec"]["features"]),
                                       "targets": tuple(d["spec"]["targets"]),
                                       "calendar": tuple(d["spec"].get("calendar", ()))})
            d["window"] = WindowSpec.from_dict(d["window"])
            d["time_range"] = tuple(d["time_range"])
            d["split_boundaries"] = Boundaries(**{k: v for k, v in d["split_boundaries"].items()
                                                  if not k.endswith("_time")})
            d["columns"] = tuple(ColumnInfo(**c) for c in d["columns"])
            d["shards"] = {k: tuple(ShardInfo(**s) for s in v) for k, v in d["shards"].items()}
            d["counts"] = Counts(**d["counts"])
            d["encoding"] = Encoding(**d["encoding"])
            unknown = set(d) - {f.name for f in fields(cls)}
            if unknown:
                raise TypeError(f"unknown fields {sorted(unknown)}")
            return cls(**d)
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"{source} lacks or mangles a field ({e}); rerun preprocessing") from e
