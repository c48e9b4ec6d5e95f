"""`python -m training.ensemble` / `seqscale-ensemble`: average N trained runs into one export.

The seed alone moves an LSTM's test error by several percent (initialization and batch
order), often more than a setting does. Averaging the predictions of N runs that differ
only in `--seed` removes most of that spread and usually lowers the error (measured in
BENCHMARKS.md). Train the members as ordinary runs (`--seed 0`, `--seed 1`, ... each in its
own job dir: in parallel on a cluster, or one after another), then:

    seqscale-ensemble --data DATA --members runs/s0,runs/s1,runs/s2 --out runs/ensemble

writes `runs/ensemble/export` (the same serving signature as a single run: raw rows in,
original units out, the members' outputs averaged in scaled units inside the graph) and
`eval.json` for the ensemble, and prints its test table beside each member's RMSE. The
trainer's `--members N` trains the members one after the other in one run and writes the same.
"""

from __future__ import annotations

import argparse
import json
import posixpath
import sys

import numpy as np

import training  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
from contract.flags import SuggestingParser
from contract.logs import import_tensorflow

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)


class MeanOfMembers(tf.Module):
    """A callable model: the mean of the members' (scaled) outputs (a Module, so the export tracks them)."""

    def __init__(self, members) -> None:
        super().__init__()
        self.members = members

    def __call__(self, x, training: bool = False):  # noqa: F811 - the Keras call signature
        return tf.add_n([m(x, training=False) for m in self.members]) / float(len(self.members))


def load_members(job_dirs: list[str], manifest):
    """The trained networks inside each member's export, after checking they fit `manifest`."""
    from training.export import read_export_manifest

    members = []
    for d in job_dirs:
        export_dir = posixpath.join(d, "export")
        if not tf.io.gfile.exists(posixpath.join(export_dir, "saved_model.pb")):
            raise SystemExit(f"seqscale-ensemble: {export_dir} has no SavedModel; train that member first")
        theirs = read_export_manifest(export_dir)
        if theirs["shards"] != json.loads(manifest.to_json())["shards"]:
            raise SystemExit(f"seqscale-ensemble: {d} was trained on another dataset than --data "
                             "(its manifest's shards differ); every member must use the same dataset")
        members.append(tf.saved_model.load(export_dir).model)
    return members


def validation_mse(members, manifest, data: str, batch: int = 1024, levels=()) -> tuple[list[float], float]:
    """Each member's and their mean's mean squared error over every validation window (scaled units:
    a point model's validation loss), streamed batch by batch. Quantile members (`levels`): of their
    point forecast (evaluation/quantiles.py `point_index`), which the mean's is too."""
    from evaluation.quantiles import point_index
    from training.data import read_windows

    def point(out, shape):
        return out.reshape(shape) if not len(levels) else out.reshape(*shape, -1)[..., point_index(levels)]

    sq, mean_sq, n = np.zeros(len(members)), 0.0, 0
    for w in read_windows(manifest, data, "val", shuffle=False).batch(batch):
        y = w["y"].numpy()
        preds = [point(m(w["x"], training=False).numpy(), y.shape) for m in members]
        sq += [float(np.sum((p - y) ** 2)) for p in preds]
        mean_sq += float(np.sum((np.mean(preds, axis=0) - y) ** 2))
        n += y.size
    if not n:
        return [], float("nan")
    return [float(v) for v in sq / n], mean_sq / n


def member_quantiles(job_dirs: list[str]) -> tuple[float, ...]:
    """The members' quantile levels (all the same, or none): their quantiles are averaged level by
    level (quantile averaging, which keeps them sorted)."""
    from contract.manifest import EXPORT_EVALUATION_NAME

    levels = set()
    for d in job_dirs:
        path = posixpath.join(d, "export", EXPORT_EVALUATION_NAME)
        found = ()
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                found = tuple(json.load(f).get("quantiles", ()))
        levels.add(found)
    if len(levels) > 1:
        raise SystemExit(f"seqscale-ensemble: the members forecast different quantile levels {sorted(levels)}; "
                         "train every member with the same --quantiles")
    return levels.pop()


def build_parser() -> argparse.ArgumentParser:
    p = SuggestingParser(prog="seqscale-ensemble", description=__doc__,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="the dataset the members were trained on (local or gs://)")
    p.add_argument("--members", required=True, help="comma-separated job dirs of the member runs (2 or more)")
    p.add_argument("--out", required=True, help="directory for export/ and eval.json")
    p.add_argument("--season", type=int, default=0, help="season length in steps for the seasonal baseline "
                   "(0: inferred from the time step)")
    p.add_argument("--calibrate", action="store_true", help="quantile members: calibrate the mean's levels on the "
                   "validation windows (split-conformal, as the trainer's --calibrate)")
    return p


def write_ensemble(dirs: list[str], manifest, data: str, out: str, *, season: int = 0, evaluate: bool = True,
                   config_json: str | None = None, members=None, calibrate: bool = False) -> dict | None:
    """The members' mean as `<out>/export` and, with `evaluate` and a test split, `<out>/eval.json`
    (returned, with each member's RMSE from its own eval.json). `members`: the networks of `dirs`
    when the caller has loaded them already (`load_members`). Quantile levels: the mean's
    validation coverage is checked, or with `calibrate` the mean is calibrated (split-conformal on
    the validation windows, as a single run's), and reliability.png is drawn."""
    from evaluation import report as er
    from training import calibration as cal
    from training.evaluate import evaluation_plan, write_report
    from training.export import export, load_series_scaling

    model = MeanOfMembers(members if members is not None else load_members(dirs, manifest))
    levels = member_quantiles(dirs)
    if calibrate and not levels:
        raise SystemExit("seqscale-ensemble: --calibrate adjusts quantile levels; the members forecast none")
    tf.io.gfile.makedirs(out)
    series = load_series_scaling(manifest, data)
    plan = evaluation_plan(manifest, data, series, season=season, levels=levels)
    served, calibration = cal.check(model, manifest, data, levels, fix=calibrate)
    export(served, manifest, posixpath.join(out, "export"), config_json=config_json, series=series,
           evaluation=er.to_dict(plan, season), quantiles=levels)
    if not (evaluate and manifest.windows("test")):
        return None
    report = cal.evaluate_served(served, model, calibration, manifest, data, season=season, plan=plan,
                                 quantiles=levels)
    report["members"] = []
    for d in dirs:
        path = posixpath.join(d, "eval.json")
        if tf.io.gfile.exists(path):
            with tf.io.gfile.GFile(path) as f:
                report["members"].append({"job_dir": d, "rmse": json.load(f)["model"].get("original", {}).get("rmse")})
    write_report(report, out)
    return report


def members_line(report: dict) -> str | None:
    """The members' test RMSE beside the ensemble's."""
    rmses = [m["rmse"] for m in report.get("members", []) if m["rmse"] is not None]
    if not rmses:
        return None
    return (f"members' RMSE: {', '.join(f'{r:.4f}' for r in rmses)} (mean {sum(rmses) / len(rmses):.4f}); "
            f"ensemble {report['model']['original']['rmse']:.4f}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training.data import load_manifest
    from training.evaluate import format_table

    dirs = [d.strip() for d in args.members.split(",") if d.strip()]
    if len(dirs) < 2:
        raise SystemExit("seqscale-ensemble: --members needs at least two job dirs")
    manifest = load_manifest(args.data)
    report = write_ensemble(dirs, manifest, args.data, args.out, season=args.season, calibrate=args.calibrate)
    if report is not None:
        print(format_table(report))
        if line := members_line(report):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
