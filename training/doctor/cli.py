"""`python -m training.doctor` (`seqscale-doctor`): why does my LSTM not learn?

Runs fast checks on a preprocessed dataset and a training configuration (the trainer's
own flags) on a sample of windows, and prints one verdict per check with the evidence
and the fix, in the order the causes bite most often:

  1. scaling       inputs and targets finite and near mean 0 / std 1 on train; statistics
                   from the training range only; no column dominating by orders of magnitude
  2. windows       sampled windows equal the raw rows they came from (with --raw); no window
                   crosses a split; the target sits `horizon` steps after the last input
  3. learnability  held-out baselines (train mean, persistence, ridge, random features):
                   "nothing to learn" when none beats the mean; "too good" when one input
                   column alone is the target (a leak), named with its lag; with --raw, the
                   target's season (autocorrelation) against the look-back
  4. head          output activation and loss fit the target's type and range (first of the
                   model checks: the others build the model with this head)
  5. capacity      the model can overfit a single batch (loss falls >= 90% in a few hundred
                   steps), else the model or the pipeline is broken
  6. lr            an LR range test with the run's optimizer (loss on a fixed batch, EMA,
                   divergence), judged only when it shows a valley, against the configured LR
  7. batch         steps per epoch and the gradient noise scale at the chosen global batch

Every check runs in isolation: one that raises is reported as that check's FAIL, the checks
needing a model are skipped (with the reason) when the head is refused, and doctor.json is
always written. Exit status: 0 when no check fails, 1 otherwise.
"""

from __future__ import annotations

import json
import logging
import posixpath
import sys
import time
from dataclasses import asdict

import training  # noqa: F401  (Keras 2 before TensorFlow)
from training.doctor.checks_data import check_learnability, check_scaling, check_windows
from training.doctor.checks_model import check_batch, check_capacity, check_head, check_lr
from training.doctor.verdict import FAIL, PASS, WARN, Verdict
from training.lr_plan import plan_lr

log = logging.getLogger(__name__)

# ------------------------------------------------------------------ CLI


def run_checks(cfg, *, raw: list[str] | None, out_dir: str, sample_size: int = 4096,
               only: tuple[str, ...] = (), replicas: int = 1) -> list[Verdict]:
    """Run the checks (or `only` some) with the run's own LR plan for `replicas`; writes doctor.json."""
    from contract.logs import import_tensorflow
    from training.data import load_manifest, sample_windows
    from training.export import load_series_scaling
    from training.train import decide_anchor

    tf = import_tensorflow()
    tf.keras.utils.set_random_seed(cfg.train.seed)
    manifest = load_manifest(cfg.data.data)
    sample = sample_windows(manifest, cfg.data.data, n=sample_size, seed=cfg.train.seed, with_ids=True)
    cfg = decide_anchor(cfg, manifest)  # --anchor auto as the trainer decides it
    plan = plan_lr(cfg.train, replicas, manifest.windows("train"))
    tf.io.gfile.makedirs(out_dir)
    checks = {  # the head first: capacity, lr and batch build the model with it
        "scaling": lambda: check_scaling(manifest, sample),
        "windows": lambda: check_windows(manifest, sample, raw, series=load_series_scaling(manifest, cfg.data.data)),
        "learnability": lambda: check_learnability(manifest, sample, seed=cfg.train.seed, raw=raw),
        "head": lambda: check_head(manifest, cfg, sample),
        "capacity": lambda: check_capacity(manifest, cfg, sample),
        "lr": lambda: check_lr(manifest, cfg, sample, plan, posixpath.join(out_dir, "lr_range.png")),
        "batch": lambda: check_batch(manifest, cfg, sample, plan.global_batch),
    }
    verdicts: list[Verdict] = []
    try:
        for name, fn in checks.items():
            if only and name not in only:
                continue
            if name in NEEDS_MODEL and any(v.check == "head" and v.status == FAIL for v in verdicts):
                verdicts.append(Verdict(name, WARN, "skipped: the configured head was refused (see 'head'), so "
                                                    "no model can be built", "fix 'head' first"))
                continue
            started = time.perf_counter()
            verdict = isolated(name, fn)
            verdict.seconds = round(time.perf_counter() - started, 2)
            verdicts.append(verdict)
    finally:  # doctor.json holds every verdict reached, whatever happened after
        with tf.io.gfile.GFile(posixpath.join(out_dir, "doctor.json"), "w") as f:
            json.dump([asdict(v) for v in verdicts], f, indent=2)
    return verdicts


NEEDS_MODEL = ("capacity", "lr", "batch")


def isolated(name: str, fn) -> Verdict:
    """One check's verdict; a check that raises is that check's FAIL with the error, never the
    end of the doctor (the other checks still run and doctor.json is still written)."""
    from training.model import HeadError

    try:
        return fn()
    except HeadError as e:
        return Verdict(name, FAIL, f"the configured head was refused: {e}",
                       "use --head-activation auto --loss auto, or a head that fits the target")
    except Exception as e:  # noqa: BLE001 - reported as a verdict, with the error's own words
        log.debug("check %r failed", name, exc_info=True)
        return Verdict(name, FAIL, f"the check itself failed: {type(e).__name__}: {e}",
                       "run with --log-level debug for the traceback; the other checks are unaffected")


def format_verdicts(verdicts: list[Verdict]) -> str:
    lines = []
    for v in verdicts:
        lines.append(f"[{v.status}] {v.check}: {v.evidence}")
        if v.fix and v.status != PASS:
            lines.append(f"       fix: {v.fix}")
    return "\n".join(lines)


def build_parser():
    """The trainer's parser (the same model/optimizer flags) plus the doctor's own."""
    from training.config import build_parser as train_parser

    parser = train_parser()
    parser.prog = "seqscale-doctor"
    parser.description = __doc__.split("\n\n")[0]
    parser.add_argument("--raw", action="append", help="the raw input files (glob) the dataset was built from")
    parser.add_argument("--out", default="doctor-out", help="where lr_range.png and doctor.json go")
    parser.add_argument("--sample", type=int, default=4096, help="windows sampled from train (default 4096)")
    parser.add_argument("--only", help="comma-separated subset of checks")
    parser.add_argument("--replicas", type=int, default=1,
                        help="replicas the real run will have (workers x GPUs each), for its global batch and LR "
                             "(default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from training.config import load_config_file, resolve

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if not args.job_dir:
        args.job_dir = args.out
    cfg = resolve(args, load_config_file(args.config) if args.config else None, source=args.config or "")
    raw = None
    if args.raw:
        import glob

        raw = sorted(p for pattern in args.raw for p in glob.glob(pattern)) or None
    verdicts = run_checks(cfg, raw=raw, out_dir=args.out, sample_size=args.sample,
                          only=tuple(args.only.split(",")) if args.only else (), replicas=args.replicas)
    print(format_verdicts(verdicts))
    print(f"plots and doctor.json: {args.out}")
    return 1 if any(v.status == FAIL for v in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
