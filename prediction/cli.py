"""`seqscale-predict`: flags -> PredictConfig, the export's manifest -> reading options, run the job.

Built like seqscale-preprocess (Beam's examples): our flags with `parse_known_args(argv)`, the
rest checked against Beam's options and handed to `PipelineOptions` explicitly; the output is
invisible until predictions.json is written; on failure the staging area is removed and the
user's message re-raised without the runner's wrapping.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions

from contract.manifest import EXPORT_EVALUATION_NAME, EXPORT_MANIFEST_NAME, Manifest
from contract.series_scaling import SERIES_SCALING_NAME, SeriesScaling
from prediction.inference import quiet_resource_warning
from prediction.options import build_parser, reading_config, resolve
from prediction.pipeline import RESULT_NAME, build, build_score, export_identity
from preprocessing import output
from preprocessing.cli import beam_parser, check_flags, list_inputs, read_text, with_default_runner
from preprocessing.errors import InputError, SeqscaleError, SpecError, user_message

log = logging.getLogger(__name__)


def load_evaluation(export_dir: str) -> dict | None:
    """The training data's season and MASE scale, written beside the export by the trainer."""
    path = FileSystems.join(export_dir, EXPORT_EVALUATION_NAME)
    return json.loads(read_text(path)) if FileSystems.exists(path) else None


def load_export(export_dir: str) -> tuple[Manifest, str, SeriesScaling | None]:
    """The export's manifest (and its text, for the identity hash) and per-series table."""
    path = FileSystems.join(export_dir, EXPORT_MANIFEST_NAME)
    if not FileSystems.exists(path):
        raise InputError(f"--export {export_dir} has no {EXPORT_MANIFEST_NAME}; pass the trainer's export directory "
                         "(<job-dir>/export), written by seqscale-train")
    text = read_text(path)
    m = Manifest.from_json(text, source=path)
    series = None
    if m.scale_by == "series":
        table = FileSystems.join(export_dir, SERIES_SCALING_NAME)
        if not FileSystems.exists(table):
            raise InputError(f"--export {export_dir} was trained with --scale-by series but has no "
                             f"{SERIES_SCALING_NAME}; export it again with this version of seqscale-train")
        series = SeriesScaling.from_json(read_text(table))
    if m.task != "regression":
        raise SpecError(f"--export {export_dir} is a {m.task} model; seqscale-predict forecasts regression models")
    return m, text, series


# The preprocessing job's readers suggest its own flags; here those options come from the export,
# so the advice names the export's setting and what would change it.
_ADVICE = (
    (re.compile(r"fix the input or pass --nan-policy drop \(drop such rows\) or --nan-policy ffill \(carry the last "
                r"value forward\)"),
     "fix the input: the model's dataset was made with --nan-policy fail, which seqscale-predict applies too "
     "(to accept such rows, preprocess and train with --nan-policy drop or ffill)"),
    (re.compile(r"fix the value or mark it missing \(empty\) and choose --nan-policy"),
     "fix the value (the export's --nan-policy decides what an empty value does)"),
    (re.compile(r"not ISO-8601; pass --time-format"),
     "not ISO-8601, and the export's dataset was made without --time-format; give the times as the training "
     "data had them"),
    (re.compile(r"remove one, or pass --duplicates keep-last to keep the later one"),
     "remove one (the model's dataset was made with --duplicates fail, which seqscale-predict applies too)"),
)


def predict_advice(message: str) -> str:
    for pattern, advice in _ADVICE:
        message = pattern.sub(advice, message)
    return message


def run(argv: list[str] | None = None) -> dict | None:
    """Parse flags, build and run the pipeline. Returns predictions.json's content when run locally."""

    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(build_parser().format_help() + "\nBeam pipeline options:\n"
              + beam_parser("seqscale-predict", job_options=False).format_help())
        raise SystemExit(0)
    args, rest = build_parser().parse_known_args(with_default_runner(argv))
    check_flags(rest, "seqscale-predict", job_options=False,
                also_known=tuple(o for a in build_parser()._actions for o in a.option_strings))
    options = PipelineOptions(rest)
    options.view_as(SetupOptions).save_main_session = False
    FileSystems.set_options(options)
    cfg = resolve(args)
    quiet_resource_warning()
    started = time.time()
    m, text, series = load_export(cfg.export)
    reading = reading_config(m, cfg)
    paths, _ = list_inputs(cfg.input)
    created = output.absent(cfg.output)
    staging = None
    try:
        staging = output.prepare_output(cfg.output, overwrite=cfg.overwrite, run_id=output.new_run_id(),
                                        marker=RESULT_NAME)
        log.info("seqscale: %s mode on %d input files with %s, output %s, runner %s", cfg.mode, len(paths),
                 cfg.export, cfg.output, options.view_as(StandardOptions).runner)
        with beam.Pipeline(options=options) as p:
            evaluation = load_evaluation(cfg.export)
            if cfg.mode == "score":
                build_score(p, cfg, reading, m, paths, staging, export_identity(cfg.export, text), series, evaluation)
            else:
                build(p, cfg, reading, m, paths, staging, export_identity(cfg.export, text), series,
                      tuple((evaluation or {}).get("quantiles", ())))
    except Exception as e:
        if staging:
            output.discard(staging)
        if created:
            output.remove_if_empty(cfg.output)
        msg = user_message(e)
        if msg is None:
            raise
        if isinstance(e, SeqscaleError) and predict_advice(msg) == msg:
            raise
        raise (type(e) if isinstance(e, SeqscaleError) else InputError)(predict_advice(msg)) from e
    path = FileSystems.join(cfg.output, RESULT_NAME)
    if not FileSystems.exists(path):
        return None
    result = json.loads(read_text(path))
    c = result["counts"]
    if cfg.mode == "score":
        rep = result["report"]
        log.info("seqscale: scored %s windows (%s forecast rows) in %.1f s: model RMSE %.6g, MAE %.6g: %s",
                 f"{c['windows_scored']:,}", f"{c['forecast_rows']:,}", time.time() - started,
                 rep["model"]["original"]["rmse"], rep["model"]["original"]["mae"], cfg.output)
        return result
    skipped = ", ".join(f"{n:,} {reason}" for reason, n in result["skipped"].items())
    log.info("seqscale: %s series forecast (%s rows), %s skipped%s, from %s rows in %.1f s: %s",
             f"{c['series_forecast']:,}", f"{c['forecast_rows']:,}", f"{c['series_skipped']:,}",
             f" ({skipped}; see skipped-*.parquet)" if skipped else "", f"{c.get('rows_read', 0):,}",
             time.time() - started, cfg.output)
    return result
