"""metadata.json: the data contract between preprocessing and training.

One frozen dataclass, written by the Beam job (last, atomically, after every shard is
complete) and read by the trainer. `from_json` rejects unknown format versions so an
old trainer never misreads a new dataset. Pure Python: no Beam, no TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT_VERSION = 1
MANIFEST_NAME = "metadata.json"


class ManifestError(ValueError):
    """metadata.json is missing, malformed or of an unknown version."""


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
class Manifest:
    """Everything the trainer needs to know about a dataset directory."""

    format_version: int
    created: str
    spec: dict[str, Any]
    task: str
    num_classes: int | None
    features: tuple[str, ...]
    targets: tuple[str, ...]
    series_column: str | None
    time_column: str
    time_kind: str  # "timestamp" (ticks are ns since epoch) or "integer"
    time_range: tuple[int, int]
    step: int
    max_gap: int
    look_back: int
    horizon: int
    stride: int
    target_sequence: bool
    split_boundaries: dict[str, int]  # val_start, test_start in ticks
    scaler: str
    columns: tuple[ColumnInfo, ...]  # features then targets (each column once)
    shards: dict[str, tuple[ShardInfo, ...]]
    counts: dict[str, Any]
    encoding: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def windows(self, split: str) -> int:
        return sum(s.windows for s in self.shards.get(split, ()))

    def column(self, name: str) -> ColumnInfo:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def target_rows(self) -> int:
        return self.horizon if self.target_sequence else 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = "metadata.json") -> Manifest:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ManifestError(f"{source} is not valid JSON ({e}); the dataset is incomplete, rerun preprocessing") from e
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise ManifestError(
                f"{source} has format_version {version!r}; this seqscale reads version {FORMAT_VERSION}. "
                "Rerun preprocessing with this version or install the matching seqscale"
            )
        try:
            d["features"] = tuple(d["features"])
            d["targets"] = tuple(d["targets"])
            d["time_range"] = tuple(d["time_range"])
            d["columns"] = tuple(ColumnInfo(**c) for c in d["columns"])
            d["shards"] = {k: tuple(ShardInfo(**s) for s in v) for k, v in d["shards"].items()}
            return cls(**d)
        except (KeyError, TypeError) as e:
            raise ManifestError(f"{source} lacks or mangles a field ({e}); rerun preprocessing") from e
