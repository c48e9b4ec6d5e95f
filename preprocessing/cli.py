"""`seqscale-preprocess`: flags and spec file -> JobConfig, input listing, run the pipeline.

As in Beam's own examples: our flags are parsed with `parse_known_args(argv)`, the rest
go to `PipelineOptions(pipeline_args)` explicitly. The output stays invisible until the
commit step writes metadata.json; on failure this run's staging area is removed and the
user's message is re-raised without the runner's wrapping.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
    _BeamArgumentParser,
)

from contract.flags import unknown_flags_message
from contract.manifest import MANIFEST_NAME, Manifest
from preprocessing import capacity, look_back, output, readers
from preprocessing.errors import InputError, SeqscaleError, SpecError, user_message
from preprocessing.options import add_arguments, build_parser, load_spec_file, resolve
from preprocessing.pipeline import build
from preprocessing.summary import summary

log = logging.getLogger(__name__)
DEFAULT_RUNNER = "FnApiRunner"


def list_inputs(patterns: tuple[str, ...]) -> tuple[list[str], list[int]]:
    """Expand patterns (globs, gs://) into a sorted list of files and their sizes in bytes (one
    listing serves both); a pattern matching nothing is an error."""
    out: list[tuple[str, int]] = []
    for pattern in patterns:
        try:
            matched = FileSystems.match([pattern])[0].metadata_list
        except Exception as e:  # noqa: BLE001 - Beam raises BeamIOError for no match
            raise InputError(f"--input {pattern!r} matches no file ({e}); check the path or glob") from e
        files = sorted((m.path, m.size_in_bytes) for m in matched if not m.path.endswith("/"))
        if not files:
            raise InputError(f"--input {pattern!r} matches no file; check the path or glob")
        for f, _ in files:
            readers.file_format(f)
        out.extend(files)
    paths = [p for p, _ in out]
    if len(set(paths)) != len(paths):
        raise InputError("--input patterns match the same file more than once; give each file once")
    return paths, [size for _, size in out]


class SeqscaleOptions(PipelineOptions):
    """seqscale's options registered with Beam: they are known to Beam's parser, travel with the
    job's options (the Dataflow console lists them) and appear in --help beside Beam's."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_arguments(parser)


def beam_parser(prog: str = "seqscale-preprocess", *, job_options: bool = True):
    """A parser with every registered PipelineOptions class's flags: Beam's, and this job's own
    (`job_options`; seqscale-predict parses its flags itself and checks the rest against Beam's)."""
    parser = _BeamArgumentParser(prog=prog, allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        if job_options or cls is not SeqscaleOptions:
            cls._add_argparse_args(parser)
    return parser


def check_flags(argv: list[str], prog: str = "seqscale-preprocess", *, job_options: bool = True,
                also_known: tuple[str, ...] = ()) -> None:
    """Every argument must be the job's or Beam's: a mistyped flag is an error naming the closest one
    (among Beam's, the job's and `also_known`)."""
    parser = beam_parser(prog, job_options=job_options)
    _, unknown = parser.parse_known_args(argv)
    if unknown:
        known = [o for a in parser._actions for o in a.option_strings] + list(also_known)
        raise SpecError(unknown_flags_message(unknown, known, prog))


def with_default_runner(argv: list[str]) -> list[str]:
    """Without --runner, run on the engine the tests run on: Beam's FnApiRunner.

    Beam 2.77's "DirectRunner" first tries the Prism runner (a Go binary it downloads from
    GitHub) and falls back to the FnApiRunner when that fails, so offline it runs one
    engine and online another. seqscale pins the tested one; --runner DirectRunner or
    --runner PrismRunner still choose those explicitly.
    """
    if any(a == "--runner" or a.startswith("--runner=") for a in argv):
        return argv
    return [*argv, "--runner", DEFAULT_RUNNER]


def run(argv: list[str] | None = None) -> Manifest | None:
    """Parse flags, build and run the pipeline. Returns the manifest when run locally."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "-h" in argv or "--help" in argv:
        print(build_parser().format_help() + "\nBeam pipeline options:\n" + beam_parser().format_help())
        raise SystemExit(0)
    argv = with_default_runner(argv)
    check_flags(argv)
    args, _ = build_parser().parse_known_args(argv)  # the rest are Beam options, checked above
    options = PipelineOptions(argv)  # ours included: they travel with the job (Dataflow lists them)
    options.view_as(SetupOptions).save_main_session = False
    FileSystems.set_options(options)  # gs:// access before the pipeline runs uses the same options
    spec = load_spec_file(args.spec, read_text) if args.spec else None
    cfg = resolve(args, spec)
    started = time.time()
    paths, sizes = list_inputs(cfg.input)
    cfg = look_back.resolve(cfg, paths)
    runner = options.view_as(StandardOptions).runner
    if cfg.capacity_check and capacity.is_local(runner):
        direct = options.view_as(DirectOptions)
        workers = direct.direct_num_workers or os.cpu_count() or 1
        est = capacity.check_local_run(cfg, paths, sizes, workers=workers)
        log.info("seqscale: estimate for this local run: about %s rows, %s of memory, %s of disk",
                 f"{est.rows:,}", capacity.gb(est.memory), capacity.gb(est.disk))
    created = output.absent(cfg.output)
    staging = None
    try:
        staging = output.prepare_output(cfg.output, overwrite=cfg.overwrite, run_id=output.new_run_id())
        log.info("seqscale: %d input files, output %s, staging %s, runner %s", len(paths), cfg.output, staging,
                 runner)
        with beam.Pipeline(options=options) as p:
            build(p, cfg, paths, staging)
    except Exception as e:
        if staging:
            output.discard(staging)
        if created:
            output.remove_if_empty(cfg.output)  # leave nothing that was not there before
        if isinstance(e, SeqscaleError):
            raise
        msg = user_message(e)
        if msg is None:
            raise
        raise InputError(msg) from e
    manifest = read_manifest(cfg.output)
    # logged here, not in the committing DoFn: on Dataflow or a portable runner that runs in a
    # worker, and the user would see the counts of dropped rows only in the workers' logs
    for level, line in summary(manifest, time.time() - started) if manifest else []:
        log.log(level, line)
    return manifest


def read_text(path: str) -> str:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read().decode()


def read_manifest(output_dir: str) -> Manifest | None:
    path = FileSystems.join(output_dir, MANIFEST_NAME)
    if not FileSystems.exists(path):
        return None
    return Manifest.from_json(read_text(path), source=path)
