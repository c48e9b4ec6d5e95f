"""Command-line flags and the JSON/YAML spec file, resolved once into a frozen JobConfig.

Flags use dashes (`--look-back`); a spec file uses the same names with dashes or
underscores. Flags given on the command line win over the spec file. Everything the
argument parser does not know is left for Beam's PipelineOptions, unchanged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from contract import calendar
from contract.flags import SuggestingParser, coerce_fields, dataclass_defaults, show_defaults
from contract.logs import LEVELS
from contract.manifest import DatasetSpec
from contract.window import WindowSpec
from preprocessing.durations import parse_duration
from preprocessing.errors import SpecError

AUTO_LOOK_BACK = 0  # JobConfig.look_back before `--look-back auto` is resolved from the data

TASKS = ("regression", "binary", "multiclass")
SCALERS = ("standard", "minmax", "robust")
SCALE_BY = ("global", "series")
NAN_POLICIES = ("fail", "drop", "ffill")
DUPLICATE_POLICIES = ("fail", "keep-last")
COMPRESSIONS = ("none", "gzip")

@dataclass(frozen=True)
class JobConfig:
    """Everything seqscale needs to know about one preprocessing run.

    Attributes:
        input: file patterns (local or gs://, globs allowed), CSV or Parquet.
        output: output directory (local or gs://).
        time_column: column with the timestamp (timestamp type, ISO string, or integer).
        series_column: column naming the series; None means the whole input is one series.
        features: input columns of each window, in order.
        targets: target columns; may overlap with features.
        task: regression | binary | multiclass.
        num_classes: class count for multiclass (targets are 0..num_classes-1).
        time_format: strptime format for string time columns that are not ISO-8601.
        look_back: rows per input window (L); 0 (`--look-back auto`, the default): a season of the
            time step and a row, found from the first rows before the job runs (look_back.py).
        look_back_source: how the look-back was chosen (set when `auto` is resolved; recorded).
        horizon: steps ahead of the last input row for the target (H).
        stride: keep every stride-th window, anchored to the global time grid.
        target_sequence: target is y[t+1..t+H] instead of y[t+H].
        train_fraction, val_fraction: split by fractions of the global time range.
        val_start, test_start: explicit split times (override the fractions).
        nan_policy: fail | drop | ffill for NaN and +-inf in used columns.
        ffill_limit: at most this many consecutive rows are forward-filled.
        duplicates: fail | keep-last for repeated timestamps within a series.
        max_gap: largest allowed time step inside a segment ("90s", "1h", or ticks);
            None infers 1.5 x the typical step.
        scaler: standard | minmax | robust.
        scale_by: global (one center/scale per column) | series (each series its own,
            from its training rows; see contract/series_scaling.py).
        unscaled: columns left in original units (a constant column must be listed here).
        calendar: calendar parts computed from the time column (hour, dayofweek, dayofyear,
            month), each a sin/cos pair of features after the file's, never scaled.
        train_shards, eval_shards: shard files per split (train, and each of val/test).
        block_size: windows per TFRecord record.
        compression: none | gzip.
        seed: seed for the window shuffle.
        backtest_every: also write the windows of a rolling-origin backtest, forecast origins
            every this many steps over the test range (inputs may reach into earlier splits);
            0: none.
        chunk_rows: rows per work unit; bounds one worker's memory.
        full_shuffle: also mix windows across work units with a Beam shuffle (costly
            on DirectRunner; meant for runners with a shuffle service such as Dataflow).
        overwrite: replace an existing dataset in `output`.
        capacity_check: before a local run, estimate its memory and disk from the input's size
            and refuse one that cannot fit (see capacity.py).
    """

    input: tuple[str, ...]
    output: str
    time_column: str
    features: tuple[str, ...]
    targets: tuple[str, ...]
    series_column: str | None = None
    task: str = "regression"
    num_classes: int | None = None
    time_format: str | None = None
    look_back: int = AUTO_LOOK_BACK
    look_back_source: str = "given"
    horizon: int = 1
    stride: int = 1
    target_sequence: bool = False
    train_fraction: float = 0.7
    val_fraction: float = 0.15
    val_start: str | None = None
    test_start: str | None = None
    nan_policy: str = "fail"
    ffill_limit: int = 10
    duplicates: str = "fail"
    max_gap: str | None = None
    scaler: str = "standard"
    scale_by: str = "global"
    unscaled: tuple[str, ...] = ()
    calendar: tuple[str, ...] = ()
    train_shards: int = 16
    eval_shards: int = 8
    block_size: int = 256
    compression: str = "none"
    seed: int = 42
    backtest_every: int = 0
    chunk_rows: int = 1_000_000
    full_shuffle: bool = False
    overwrite: bool = False
    capacity_check: bool = True

    def __post_init__(self) -> None:
        _check_config(self)

    @property
    def file_columns(self) -> tuple[str, ...]:
        """Numeric columns read from the input files: features then targets, each once."""
        out = list(self.features)
        out += [t for t in self.targets if t not in out]
        return tuple(out)

    @property
    def calendar_columns(self) -> tuple[str, ...]:
        return calendar.column_names(self.calendar)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every numeric column of a row: the file's, then the calendar's (computed from the time)."""
        return self.file_columns + self.calendar_columns

    @property
    def window_features(self) -> tuple[str, ...]:
        """The input columns of a window: the file's features, then the calendar's."""
        return self.features + self.calendar_columns

    @property
    def window(self) -> WindowSpec:
        if self.look_back == AUTO_LOOK_BACK:
            raise SpecError("--look-back auto is not resolved yet (look_back.resolve reads the data's time step)")
        return WindowSpec(look_back=self.look_back, horizon=self.horizon, stride=self.stride,
                          target_sequence=self.target_sequence)

    @property
    def dataset_spec(self) -> DatasetSpec:
        num_classes = self.num_classes if self.task == "multiclass" else (2 if self.task == "binary" else None)
        return DatasetSpec(time_column=self.time_column, features=self.window_features, targets=self.targets,
                           series_column=self.series_column, task=self.task, num_classes=num_classes,
                           calendar=self.calendar)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def other_options(self) -> dict[str, Any]:
        """The options not recorded in the manifest's spec or window (each stored once there)."""
        stored = ({f.name for f in dataclasses.fields(DatasetSpec)} | {f.name for f in dataclasses.fields(WindowSpec)}
                  | {"scale_by"})
        return {k: v for k, v in self.to_dict().items() if k not in stored}


def _check_config(c: JobConfig) -> None:
    """Reject inconsistent specs before any data is read."""
    if not c.input:
        raise SpecError("no --input given; pass one or more file patterns (CSV or Parquet)")
    if not c.features:
        raise SpecError("no --features given; name the input columns of each window")
    if not c.targets:
        raise SpecError("no --targets given; name the column(s) to predict")
    for name, cols in (("--features", c.features), ("--targets", c.targets), ("--unscaled", c.unscaled),
                       ("--calendar", c.calendar)):
        seen = set()
        for col in cols:
            if col in seen:
                raise SpecError(f"column {col!r} is named twice in {name}; name each column once")
            seen.add(col)
    for col in c.columns:
        if col == c.time_column:
            raise SpecError(f"column {col!r} is the time column and cannot also be a feature or target")
        if c.series_column is not None and col == c.series_column:
            raise SpecError(f"column {col!r} is the series column and cannot also be a feature or target")
    if c.series_column is not None and c.series_column == c.time_column:
        raise SpecError("--series-column and --time-column name the same column")
    for part in c.calendar:
        if part not in calendar.PARTS:
            raise SpecError(f"--calendar {part!r} is unknown; use some of {', '.join(calendar.PARTS)}")
    for col in c.calendar_columns:
        if col in c.file_columns:
            raise SpecError(f"--calendar computes {col!r}, which is also a column of --features/--targets; "
                            "drop that column (the job computes it from the time column) or rename it")
    for col in c.unscaled:
        if col not in c.file_columns:
            raise SpecError(f"--unscaled names {col!r}, which is not a feature or target")
    if c.task not in TASKS:
        raise SpecError(f"--task {c.task!r} is unknown; use one of {', '.join(TASKS)}")
    if c.task == "multiclass" and (c.num_classes is None or c.num_classes < 2):
        raise SpecError("--task multiclass needs --num-classes >= 2")
    if c.task != "regression" and len(c.targets) != 1:
        raise SpecError(f"--task {c.task} takes exactly one target column, got {len(c.targets)}")
    if c.look_back < 0:
        raise SpecError(f"--look-back must be >= 1 or auto, got {c.look_back}")
    for name in ("horizon", "stride", "train_shards", "eval_shards", "block_size", "ffill_limit"):
        if getattr(c, name) < 1:
            raise SpecError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(c, name)}")
    if c.backtest_every < 0:
        raise SpecError(f"--backtest-every must be >= 0 (0: no backtest), got {c.backtest_every}")
    if c.look_back != AUTO_LOOK_BACK and c.chunk_rows < 10 * c.window.span:
        raise SpecError(
            f"--chunk-rows {c.chunk_rows} is too small for look_back + horizon = {c.window.span}; "
            "use at least 10x that"
        )
    if c.val_start is None and c.test_start is None:
        if not (0 < c.train_fraction < 1 and 0 <= c.val_fraction < 1 and c.train_fraction + c.val_fraction < 1):
            raise SpecError(
                f"split fractions train={c.train_fraction} val={c.val_fraction} must satisfy "
                "0 < train, 0 <= val and train + val < 1 (the rest is test)"
            )
    elif c.val_start is None or c.test_start is None:
        raise SpecError("give both --val-start and --test-start, or neither (then fractions are used)")
    for name, allowed in (
        ("scaler", SCALERS),
        ("scale_by", SCALE_BY),
        ("nan_policy", NAN_POLICIES),
        ("duplicates", DUPLICATE_POLICIES),
        ("compression", COMPRESSIONS),
    ):
        if getattr(c, name) not in allowed:
            raise SpecError(f"--{name.replace('_', '-')} {getattr(c, name)!r} is unknown; use one of {', '.join(allowed)}")
    if c.scale_by == "series" and c.series_column is None:
        raise SpecError("--scale-by series needs --series-column (the column naming each row's series)")
    if c.scale_by == "series" and c.scaler == "robust":
        raise SpecError("--scale-by series works with --scaler standard or minmax (robust would need a "
                        "quantile sketch per series); choose one of those or --scale-by global")
    if c.max_gap is not None:
        parse_duration(c.max_gap, timestamp=True)


def _csv(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def build_parser() -> argparse.ArgumentParser:
    p = SuggestingParser(
        prog="seqscale-preprocess",
        description=(
            "Turn CSV/Parquet time series into scaled, windowed, sharded TFRecords plus "
            "metadata.json. Every other flag must be a Beam pipeline option (--runner, "
            "--direct_num_workers, --project, --region, --temp_location, --setup_file, ...); "
            "anything else is an error."
        ),
    )
    add_arguments(p)
    return show_defaults(p, {**dataclass_defaults(JobConfig), "look_back": "auto"})


def add_arguments(p) -> None:
    """seqscale's flags, on our parser or on Beam's (cli.SeqscaleOptions registers them with Beam)."""
    a = p.add_argument
    a("--spec", help="JSON or YAML file with any of the options below (flags override it)")
    a("--input", action="append", help="file pattern, local or gs://; repeat or comma-separate")
    a("--output", help="output directory, local or gs://")
    a("--time-column", help="timestamp column")
    a("--series-column", help="column naming the series (omit for a single series)")
    a("--features", type=_csv, help="comma-separated input columns")
    a("--targets", type=_csv, help="comma-separated target columns")
    a("--task", choices=TASKS, help="regression | binary | multiclass")
    a("--num-classes", type=int, help="class count for --task multiclass")
    a("--time-format", help="strptime format of a string time column that is not ISO-8601")
    a("--look-back", type=look_back_value, help="rows per input window L, or auto: a season of the time step "
      "and a row (25 for hourly rows, 8 for daily), 24 when the step names no season")
    a("--horizon", type=int, help="target is H steps after the last input row")
    a("--stride", type=int, help="keep every stride-th window")
    a("--target-sequence", action="store_const", const=True, help="target is the next H steps, not only step H")
    a("--train-fraction", type=float, help="fraction of the global time range for train")
    a("--val-fraction", type=float, help="fraction for validation")
    a("--val-start", help="explicit first time of the validation split (with --test-start)")
    a("--test-start", help="explicit first time of the test split")
    a("--nan-policy", choices=NAN_POLICIES, help="NaN/inf in used columns: fail | drop | ffill")
    a("--ffill-limit", type=int, help="max consecutive rows forward-filled")
    a("--duplicates", choices=DUPLICATE_POLICIES, help="repeated timestamps in a series: fail | keep-last")
    a("--max-gap", help="largest time step inside a segment, e.g. 90s or 1h; unset: 1.5 x the typical step")
    a("--scaler", choices=SCALERS, help="standard | minmax | robust")
    a("--scale-by", choices=SCALE_BY, help="global: one scaling per column | series: each series its own "
      "(long-format tables whose series sit on different levels)")
    a("--unscaled", type=_csv, help="comma-separated columns to keep in original units")
    a("--calendar", type=_csv, help="calendar features from the time column, sin/cos pairs: "
      "hour,dayofweek,dayofyear,month (any of them)")
    a("--train-shards", type=int, help="train shard files")
    a("--eval-shards", type=int, help="shard files for val and for test")
    a("--block-size", type=int, help="windows per TFRecord record")
    a("--compression", choices=COMPRESSIONS, help="none | gzip")
    a("--seed", type=int, help="shuffle seed")
    a("--backtest-every", type=int, help="rolling-origin backtest: forecast origins every N steps over the test "
      "range, inputs may reach into earlier splits (0: none)")
    a("--chunk-rows", type=int, help="rows per work unit, bounds worker memory")
    a("--full-shuffle", action="store_const", const=True, help="Beam-level shuffle of all windows (Dataflow)")
    a("--overwrite", action="store_const", const=True, help="replace an existing dataset in --output")
    a("--no-capacity-check", dest="capacity_check", action="store_const", const=False,
      help="skip the estimate of a local run's memory and disk (it refuses a run that cannot fit)")
    a("--log-level", choices=LEVELS, help="debug shows Beam's and TensorFlow's logs and full tracebacks (default: info)")


def look_back_value(text: str) -> int:
    """`--look-back`: a row count, or auto (AUTO_LOOK_BACK)."""
    if str(text).strip().lower() == "auto":
        return AUTO_LOOK_BACK
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or auto, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected >= 1 rows or auto, got {value}")
    return value


_LIST_FIELDS = {"input", "features", "targets", "unscaled", "calendar"}


def load_spec_file(path: str, read_text) -> dict[str, Any]:
    """Parse a JSON or YAML spec file into a dict of JobConfig fields."""
    text = read_text(path)
    try:
        if path.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:  # noqa: BLE001 - re-raised with the file name
        raise SpecError(f"cannot parse spec file {path}: {e}") from e
    if not isinstance(data, dict):
        raise SpecError(f"spec file {path} must hold a mapping of option names to values")
    values = {k.replace("-", "_"): v for k, v in data.items()}
    if str(values.get("look_back", "")).strip().lower() == "auto":
        values["look_back"] = AUTO_LOOK_BACK
    choices = {a.dest: a.choices for a in build_parser()._actions if a.choices}
    return coerce_fields(JobConfig, values, source=path, error=SpecError, choices=choices)


def resolve(args: argparse.Namespace, spec: dict[str, Any] | None = None) -> JobConfig:
    """Merge the spec file (if any) and the flags into one JobConfig."""
    values: dict[str, Any] = dict(spec or {})
    known = {f.name for f in dataclasses.fields(JobConfig)}
    unknown = set(values) - known
    if unknown:
        raise SpecError(f"unknown option(s) in spec file: {', '.join(sorted(unknown))}")
    for name in known:
        v = getattr(args, name, None)
        if v is not None:
            values[name] = v
    if isinstance(values.get("input"), list | tuple) and all(isinstance(s, str) for s in values["input"]):
        values["input"] = [p for s in values["input"] for p in _csv(s)]
    for name in _LIST_FIELDS:
        if name in values:
            v = values[name]
            values[name] = _csv(v) if isinstance(v, str) else tuple(v)
    missing = [n for n in ("input", "output", "time_column", "features", "targets") if not values.get(n)]
    if missing:
        raise SpecError("missing required option(s): " + ", ".join("--" + m.replace("_", "-") for m in missing))
    try:
        return JobConfig(**values)
    except TypeError as e:
        raise SpecError(str(e)) from e
