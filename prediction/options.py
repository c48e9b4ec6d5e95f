"""seqscale-predict's flags -> PredictConfig; the reading config comes from the export's manifest.

The user names the export, the input and the output. Everything the rows need (columns, time
and series columns, look-back, horizon, gap tolerance, NaN and duplicate policies, calendar,
scaling) is the export's: the model was trained on it, and a second copy given by hand
could only disagree.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from contract.flags import SuggestingParser, dataclass_defaults, show_defaults
from contract.logs import LEVELS
from contract.manifest import Manifest
from preprocessing.errors import SpecError
from preprocessing.options import JobConfig

SPLITS = ("val", "test", "backtest")


@dataclass(frozen=True)
class PredictConfig:
    """One prediction run.

    Attributes:
        export: the trainer's export directory (local or gs://): a SavedModel taking raw
            windows, with seqscale_manifest.json beside it.
        input: file patterns (local or gs://, globs allowed), CSV or Parquet, with the columns
            the model was trained on.
        output: output directory (local or gs://): forecasts-*.parquet, skipped-*.parquet and
            predictions.json, written last.
        batch_size: windows per model call.
        overwrite: replace an existing prediction output in `output`.
        split: score mode: the windows of this split of the training data's boundaries
            (val | test), wholly inside it, as the preprocessing job cut them; backtest: the
            dataset's rolling-origin backtest windows (--backtest-every), scored per origin.
        start, end: score mode: every window whose targets lie in [start, end) (either may be
            open); its inputs may come before `start`.
    """

    export: str
    input: tuple[str, ...]
    output: str
    batch_size: int = 1024
    overwrite: bool = False
    split: str | None = None
    start: str | None = None
    end: str | None = None

    @property
    def mode(self) -> str:
        return "score" if self.split or self.start or self.end else "forecast"

    def __post_init__(self) -> None:
        if not self.input:
            raise SpecError("no --input given; pass one or more file patterns (CSV or Parquet)")
        if self.batch_size < 1:
            raise SpecError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.split and (self.start or self.end):
            raise SpecError("give --split or --from/--to, not both")
        if self.split not in (None, *SPLITS):
            raise SpecError(f"--split {self.split!r} is unknown; use one of {', '.join(SPLITS)}")


def build_parser() -> argparse.ArgumentParser:
    p = SuggestingParser(
        prog="seqscale-predict",
        description=("Forecast the next steps of every series with a seqscale export, as a Beam job. "
                     "Columns, look-back, horizon and policies come from the export. Every other flag "
                     "must be a Beam pipeline option (--runner, --direct_num_workers, --project, ...)."),
    )
    add_arguments(p)
    return show_defaults(p, dataclass_defaults(PredictConfig))


def add_arguments(p) -> None:
    a = p.add_argument
    a("--export", help="the trainer's export directory (<job-dir>/export), local or gs://")
    a("--input", action="append", help="file pattern, local or gs://; repeat or comma-separate")
    a("--output", help="output directory, local or gs://")
    a("--batch-size", type=int, help="windows per model call")
    a("--split", choices=SPLITS, help="score mode: the windows of this split of the training data, with actuals "
      "and the report (test: the trainer's eval.json; backtest: its rolling-origin backtest, per origin)")
    a("--from", dest="start", help="score mode: windows whose targets lie at or after this time (ISO-8601 or ticks)")
    a("--to", dest="end", help="score mode: ... and before this time")
    a("--overwrite", action="store_const", const=True, help="replace an existing prediction output in --output")
    a("--log-level", choices=LEVELS, help="debug shows Beam's and TensorFlow's logs and full tracebacks")


def resolve(args: argparse.Namespace) -> PredictConfig:
    for flag in ("export", "input", "output"):
        if not getattr(args, flag):
            raise SpecError(f"--{flag} is required (see seqscale-predict --help)")
    inputs = tuple(s.strip() for item in args.input for s in item.split(",") if s.strip())
    given = {k: getattr(args, k) for k in ("batch_size", "overwrite", "split", "start", "end")
             if getattr(args, k) is not None}
    return PredictConfig(export=args.export, input=inputs, output=args.output, **given)


def reading_config(m: Manifest, cfg: PredictConfig) -> JobConfig:
    """The preprocessing job's reading and cleaning options for this export's rows.

    Forecast inputs need the model's input columns only: a target that is not an input is not
    read (future rows do not have it); score mode reads the targets too. The calendar columns
    are computed by the export from the times, so the reader does not compute them.
    """
    features = m.file_features
    targets = m.targets if cfg.mode == "score" else tuple(t for t in m.targets if t in features) or features[:1]
    o = m.options
    return JobConfig(input=cfg.input, output=cfg.output, time_column=m.time_column, features=features,
                     targets=targets, series_column=m.series_column, time_format=o.get("time_format"),
                     look_back=m.window.look_back, horizon=m.window.horizon, nan_policy=o.get("nan_policy", "fail"),
                     ffill_limit=int(o.get("ffill_limit", 10)), duplicates=o.get("duplicates", "fail"))
