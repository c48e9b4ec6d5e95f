"""Typed trainer configuration: flags and an optional JSON/YAML file, mapped once.

As in tensorflow/models `official/`: one dataclass per concern, each field documented,
flags mapped onto them in one place, and the resolved config saved beside the export.
Flags win over the config file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any

from contract.flags import SuggestingParser, coerce_fields, dataclass_defaults, show_defaults
from contract.logs import LEVELS

OPTIMIZERS = ("adam", "adamw", "sgd")
HEADS = ("auto", "linear", "sigmoid", "softmax")
ANCHORS = ("auto", "none", "last", "relative", "scaled")
LOSSES = ("auto", "mse", "huber", "mae", "binary_crossentropy", "sparse_categorical_crossentropy")
SHARD_POLICIES = ("auto", "file", "data")
VERBOSITY = ("auto", "bar", "line")
RULES = ("sqrt", "linear", "none")  # LR scaling with the global batch (lr_plan.py)
DECAYS = ("constant", "cosine", "plateau")
DEFAULT_PER_REPLICA_BATCH = 64  # when neither per-replica nor global batch is set ...
MIN_DEFAULT_PER_REPLICA_BATCH = 16  # ... halved down to this on a small train split ...
MIN_STEPS_PER_EPOCH = 50  # ... until an epoch has this many steps (lr_plan.default_per_replica_batch)
AUTO_MEMBERS = 3  # --members auto: an ensemble of this many networks ...
AUTO_MEMBERS_MAX_TRAIN_WINDOWS = 50_000  # ... on a train split of at most this many windows, else one (default_members)


class ConfigError(ValueError):
    """The trainer options are inconsistent."""


@dataclass(frozen=True)
class DataConfig:
    """Where the windows come from and how they are read.

    Attributes:
        data: dataset directory written by preprocessing (local or gs://).
        verify_hashes: check every shard's sha256 against metadata.json before training.
        shuffle: shuffle file order and windows (off gives a fixed order, for exact replays).
        shuffle_buffer: windows in the shuffle buffer.
        cycle_length: shard files read at once (interleave).
        shard_policy: auto (FILE when train shards >= workers, else DATA), file or data.
    """

    data: str = ""
    verify_hashes: bool = False
    shuffle: bool = True
    shuffle_buffer: int = 10_000
    cycle_length: int = 8
    shard_policy: str = "auto"


@dataclass(frozen=True)
class ModelConfig:
    """The stacked LSTM.

    Attributes:
        units: units per LSTM layer, first to last (the classic recipe: 128, 64).
        bidirectional: wrap each LSTM layer in Bidirectional.
        dropout: dropout between layers (never recurrent dropout, which disables cuDNN).
        linear_skip: add a linear map of the targets' own past (their columns of the window) to the head
            (LSTNet's autoregressive component): a network's output scale follows its inputs'
            only loosely, and smooth or strongly periodic targets want a precise linear term.
            None (default): on when every target is among the features, else off.
        anchor: what a regression output is relative to. none: the model outputs the target's
            level. last: the output is added to each target's last input value, so the model
            forecasts the change from it (a level beyond the training range stays reachable).
            relative: as last, and the network also reads the targets' columns of the window
            relative to that value (NLinear, Zeng et al. 2023): level-free inputs. scaled: as
            relative, in units of each target's spread over the window (the window divided by it,
            the output change multiplied by it; RevIN-style, Kim et al. 2022): level- and
            scale-free, for series whose changes are small beside their level. auto: the default
            for the data (see choose_anchor).
        head_activation: auto picks from the task (linear, sigmoid, softmax); others are checked.
        loss: auto picks from the task; regression may choose mse, huber or mae.
        quantiles: sorted levels in (0, 1) (e.g. 0.1, 0.5, 0.9): one output per target, step and
            level, trained with the pinball loss averaged over levels; the levels never cross.
            The point forecast is the 0.5 level (the median), or, when 0.5 is not asked for, a
            mean head trained with the root mean squared error beside them. Empty: a point forecast
            trained with `loss`.
    """

    units: tuple[int, ...] = (128, 64)
    bidirectional: bool = False
    dropout: float = 0.1  # study_defaults: lower best val loss than 0.2 on all three benchmark sets
    linear_skip: bool | None = None  # None: on when every target is among the features
    anchor: str = "auto"
    head_activation: str = "auto"
    loss: str = "auto"
    quantiles: tuple[float, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    """Optimization.

    Attributes:
        epochs: maximum epochs (early stopping may end sooner).
        per_replica_batch: windows per replica per step (set this or global_batch; neither
            means DEFAULT_PER_REPLICA_BATCH, halved on a small train split so an epoch has at
            least MIN_STEPS_PER_EPOCH steps).
        global_batch: windows per step over all replicas (set this or per_replica_batch).
        optimizer: adam (default), adamw (with weight_decay) or sgd (with momentum).
        base_lr: learning rate at the reference batch.
        reference_batch: the batch base_lr was tuned for.
        lr_scaling: sqrt (Adam family default), linear (SGD default), none, or auto.
        warmup_epochs: linear warmup length (fractions allowed).
        decay: constant, cosine or plateau after warmup.
        min_lr: floor of the cosine decay.
        plateau_patience, plateau_factor: LR x factor after this many epochs without improvement.
        weight_decay: AdamW decoupled weight decay.
        momentum: SGD momentum.
        clipnorm: gradient clipping by norm (0 disables).
        ema: weight averaging: the weights' exponential moving average over the steps (this
            momentum) replaces the weights at each epoch's end, so validation, early stopping
            and the export see the average (Keras' use_ema); 0 disables.
        patience: early stopping patience in epochs (0 disables early stopping).
        min_delta: smallest val_loss improvement that counts.
        max_steps_per_epoch: cap on steps per epoch (0: one pass over the train windows).
        seed: seed for weights, shuffling and dropout.
        members: networks to train, with seeds seed, seed+1, ... (each a whole run in
            <job_dir>/member-<k>); the export and eval.json are their average (in scaled
            units, as seqscale-ensemble's), which removes most of the seed's spread. None
            (auto): AUTO_MEMBERS on a train split of at most AUTO_MEMBERS_MAX_TRAIN_WINDOWS
            windows, where three runs cost little, else 1 (default_members).
        mixed_precision: float16 compute on GPUs (the head stays float32).
        flat_patience: stop after this many epochs of a flat loss (0 disables the guard's flat check).
        flat_tolerance: "flat" means within this fraction of the predict-the-mean loss.
        steps_per_execution: training steps per call of the compiled step function (Keras'
            `steps_per_execution`): fewer host round trips for small models on fast devices;
            callbacks' batch hooks then see every N-th step.
    """

    epochs: int = 100  # early stopping ends most runs long before (study_defaults: 50 was hit on hourly temperatures)
    per_replica_batch: int | None = None
    global_batch: int | None = None
    optimizer: str = "adam"
    base_lr: float = 3e-3  # at --reference-batch; 1e-3 undertrained the small benchmark sets (BENCHMARKS.md)
    reference_batch: int = 64
    lr_scaling: str = "auto"
    warmup_epochs: float = 1.0
    decay: str = "constant"
    min_lr: float = 0.0
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    weight_decay: float = 1e-4
    momentum: float = 0.9
    clipnorm: float = 1.0
    ema: float = 0.0
    patience: int = 10
    min_delta: float = 0.0
    max_steps_per_epoch: int = 0
    seed: int = 0
    members: int | None = None  # None: auto, decided from the train split (default_members)
    mixed_precision: bool = False
    flat_patience: int = 3
    flat_tolerance: float = 0.05
    steps_per_execution: int = 1


@dataclass(frozen=True)
class RuntimeConfig:
    """Where this process runs and writes.

    Attributes:
        job_dir: checkpoints, backup, export, history.json, loss.png, eval.json (local or gs://).
        num_workers: worker count when the cluster comes from JOB_COMPLETION_INDEX.
        host_pattern: worker address pattern, e.g. seqscale-train-{index}.seqscale-workers:2222.
        base_port: {port} in host_pattern expands to base_port + index.
        startup_timeout: seconds to wait for all workers to connect before failing.
        evaluate: evaluate on the test split and write eval.json at the end.
        season: rows per season for the seasonal naive baseline and MASE (0: a day for
            sub-daily steps, a week for daily, a year for weekly data).
        calibrate: with --quantiles, shift each level by its split-conformal residual quantile
            on the validation windows, per horizon step and target (in the export and eval.json),
            so each level holds on validation at every step; coverage before and after is
            reported on the test range.
        min_free_disk_mb: refuse to start when a local job dir has less free space than this.
        verbose: Keras progress: bar (a terminal), line (one line per epoch, for pods and
            logs), or auto (bar on a terminal, else line).
        log_level: debug | info | warning | error (debug adds TensorFlow's logs and tracebacks).
    """

    job_dir: str = ""
    num_workers: int | None = None
    host_pattern: str | None = None
    base_port: int = 2222
    startup_timeout: int = 300
    evaluate: bool = True
    season: int = 0
    calibrate: bool = False
    min_free_disk_mb: int = 512
    verbose: str = "auto"
    log_level: str = "info"


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig, "runtime": RuntimeConfig}


def _quantiles(text) -> tuple[float, ...]:
    """Comma-separated levels, strictly increasing, each inside (0, 1)."""
    items = text if isinstance(text, list | tuple) else str(text).split(",")
    try:
        levels = tuple(float(q) for q in items if str(q).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--quantiles takes comma-separated numbers in (0, 1), got {text!r}") from None
    if not levels or any(not 0 < q < 1 for q in levels) or list(levels) != sorted(set(levels)):
        raise argparse.ArgumentTypeError(f"--quantiles needs increasing levels strictly inside (0, 1), e.g. "
                                         f"0.1,0.5,0.9; got {text!r}")
    return levels


def _members(text) -> int | str:
    """A count of networks (>= 1) or "auto"."""
    if str(text).strip().lower() == "auto":
        return "auto"
    try:
        number = float(str(text))  # a config file's 3.0 (YAML and JSON numbers) is 3, as for every int field
    except ValueError:
        number = float("nan")
    if isinstance(text, bool) or not number.is_integer():
        raise argparse.ArgumentTypeError(f"--members takes a count of networks or auto, got {text!r}")
    n = int(number)
    if n < 1:
        raise argparse.ArgumentTypeError(f"--members must be >= 1 (1: a single network) or auto, got {text!r}")
    return n


def default_members(train_windows: int) -> int:
    """--members auto: AUTO_MEMBERS networks on a train split of at most AUTO_MEMBERS_MAX_TRAIN_WINDOWS
    windows, else one.

    Averaging runs that differ only in the seed lowered the validation loss by 3-4.5% on every
    benchmark set (0.955-0.969x the members' mean); on the test ranges, seeds 0-2's ensemble scored
    1.4-5.5% below its own three networks' mean RMSE (BENCHMARKS.md).
    It costs N whole runs; on a small split that is minutes (one network on 24,000 windows: ~2.5
    minutes on two CPU cores), on a large one it is not small, so a large split trains one unless
    asked (--members N).
    """
    return AUTO_MEMBERS if train_windows <= AUTO_MEMBERS_MAX_TRAIN_WINDOWS else 1


def _units(text: str) -> tuple[int, ...]:
    try:
        units = tuple(int(u) for u in str(text).split(",") if u.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--units takes comma-separated integers, got {text!r}") from None
    if not units or min(units) < 1:
        raise argparse.ArgumentTypeError("--units needs at least one positive layer size")
    return units


def build_parser() -> argparse.ArgumentParser:
    p = SuggestingParser(prog="seqscale-train", description="Train a stacked LSTM on a seqscale dataset "
                                "(MultiWorkerMirroredStrategy when TF_CONFIG or JOB_COMPLETION_INDEX is set).")
    a = p.add_argument
    a("--config", help="JSON or YAML file with sections data/model/train/runtime (flags override it)")
    g = p.add_argument_group("data")
    g.add_argument("--data", help="dataset directory from preprocessing (local or gs://)")
    g.add_argument("--verify-hashes", action="store_const", const=True, help="check shard sha256 before training")
    g.add_argument("--no-shuffle", dest="shuffle", action="store_const", const=False, help="fixed window order")
    g.add_argument("--shuffle-buffer", type=int, help="windows in the shuffle buffer")
    g.add_argument("--cycle-length", type=int, help="shard files read at once")
    g.add_argument("--shard-policy", choices=SHARD_POLICIES, help="auto | file | data")
    g = p.add_argument_group("model")
    g.add_argument("--units", type=_units, help="units per LSTM layer, comma-separated")
    g.add_argument("--bidirectional", action="store_const", const=True, help="bidirectional LSTM layers")
    g.add_argument("--dropout", type=float, help="dropout between layers")
    g.add_argument("--linear-skip", dest="linear_skip", action="store_const", const=True,
                   help="add a linear map of the targets' own past to the output (LSTNet's autoregressive term); "
                   "default: on when every target is among the features")
    g.add_argument("--no-linear-skip", dest="linear_skip", action="store_const", const=False, help="LSTM head only")
    g.add_argument("--anchor", choices=ANCHORS, help="none: forecast the target's level; last: the change from "
                   "its last input value; relative: that change, from the window relative to that value (NLinear); "
                   "scaled: as relative, in units of the target's spread over the window (RevIN-style); "
                   "auto: the default for the data")
    g.add_argument("--head-activation", choices=HEADS, help="auto picks from the task")
    g.add_argument("--quantiles", type=_quantiles, help="quantile levels, e.g. 0.1,0.5,0.9: forecast them with "
                   "the pinball loss (never crossing); the point forecast is the 0.5 level, or without it "
                   "a mean head (root mean squared error)")
    g.add_argument("--loss", choices=LOSSES, help="auto picks from the task")
    g = p.add_argument_group("train")
    g.add_argument("--epochs", type=int, help="maximum epochs")
    b = g.add_mutually_exclusive_group()
    b.add_argument("--per-replica-batch-size", dest="per_replica_batch", type=int,
                   help=f"windows per replica per step; global = this x replicas (default: {DEFAULT_PER_REPLICA_BATCH}, "
                   f"halved down to {MIN_DEFAULT_PER_REPLICA_BATCH} while an epoch has fewer than "
                   f"{MIN_STEPS_PER_EPOCH} steps)")
    b.add_argument("--global-batch-size", dest="global_batch", type=int,
                   help="windows per step over all replicas; must divide by the replica count")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="adam | adamw | sgd")
    g.add_argument("--base-lr", type=float, help="LR at the reference batch")
    g.add_argument("--reference-batch", type=int, help="batch size base-lr is tuned for")
    g.add_argument("--lr-scaling", choices=(*RULES, "auto"), help="sqrt (Adam) | linear (SGD) | none | auto (by optimizer)")
    g.add_argument("--warmup-epochs", type=float, help="linear warmup")
    g.add_argument("--decay", choices=DECAYS, help="constant | cosine | plateau")
    g.add_argument("--min-lr", type=float, help="floor of cosine decay")
    g.add_argument("--plateau-patience", type=int, help="epochs without improvement before LR x factor")
    g.add_argument("--plateau-factor", type=float, help="LR factor on plateau")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay")
    g.add_argument("--momentum", type=float, help="SGD momentum")
    g.add_argument("--clipnorm", type=float, help="gradient clipping by norm, 0 disables")
    g.add_argument("--ema", type=float, help="weight averaging: each epoch ends on the moving average of its steps' "
                   "weights with this momentum (e.g. 0.99), which validation, early stopping and the export see; 0 "
                   "disables (default)")
    g.add_argument("--patience", type=int, help="early stopping patience in epochs, 0 disables (it watches val_loss; "
                   "with a mean head, --quantiles without 0.5, the mean's val_point_mse)")
    g.add_argument("--min-delta", type=float, help="smallest improvement of the watched loss (see --patience)")
    g.add_argument("--max-steps-per-epoch", type=int, help="cap steps per epoch, 0 means one pass over the train windows")
    g.add_argument("--seed", type=int, help="seed")
    g.add_argument("--members", type=_members, help="train N networks with seeds seed..seed+N-1 (each in "
                   "<job-dir>/member-<k>) and export their average: an ensemble in one run; auto (the default): "
                   f"{AUTO_MEMBERS} on a train split of at most {AUTO_MEMBERS_MAX_TRAIN_WINDOWS:,} windows, else 1")
    g.add_argument("--mixed-precision", action="store_const", const=True, help="float16 compute (GPU)")
    g.add_argument("--flat-patience", type=int, help="stop after N epochs of flat loss, 0 disables the flat check")
    g.add_argument("--flat-tolerance", type=float, help="flat = within this fraction of predict-the-mean")
    g.add_argument("--steps-per-execution", type=int, help="training steps per compiled call (Keras steps_per_execution)")
    g = p.add_argument_group("runtime")
    g.add_argument("--job-dir", help="output directory (local or gs://)")
    g.add_argument("--num-workers", type=int, help="worker count with JOB_COMPLETION_INDEX")
    g.add_argument("--host-pattern", help="worker address pattern, e.g. train-{index}.workers:2222")
    g.add_argument("--base-port", type=int, help="{port} = base port + index")
    g.add_argument("--startup-timeout", type=int, help="seconds to wait for peers")
    g.add_argument("--no-evaluate", dest="evaluate", action="store_const", const=False, help="skip test evaluation")
    g.add_argument("--calibrate", action="store_const", const=True, help="with --quantiles: conformal calibration "
                   "of each level (and horizon step) on the validation windows (export and eval.json)")
    g.add_argument("--season", type=int, help="rows per season for the seasonal naive baseline and MASE (0: "
                   "inferred from the time step)")
    g.add_argument("--min-free-disk-mb", type=int, help="refuse a local job dir with less free space")
    g.add_argument("--verbose", choices=VERBOSITY, help="Keras progress: bar, one line per epoch, or auto (bar on a "
                   "terminal)")
    g.add_argument("--log-level", choices=LEVELS, help="debug adds TensorFlow's logs and full tracebacks")
    return show_defaults(p, dataclass_defaults(*_SECTIONS.values()))


def resolve(args: argparse.Namespace, file_values: dict[str, Any] | None = None, *,
            source: str = "config file") -> Config:
    """Merge a config file (sections or flat keys, checked and converted to the field types) and flags."""
    sections: dict[str, dict[str, Any]] = {k: {} for k in _SECTIONS}
    fields_of = {k: {f.name for f in dataclasses.fields(c)} for k, c in _SECTIONS.items()}
    for key, value in (file_values or {}).items():
        key = key.replace("-", "_")
        if key in _SECTIONS and isinstance(value, dict):
            for k, v in value.items():
                k = k.replace("-", "_")
                if k not in fields_of[key]:
                    raise ConfigError(f"unknown option {key}.{k} in the config file")
                sections[key][k] = v
            continue
        owner = [s for s, names in fields_of.items() if key in names]
        if not owner:
            raise ConfigError(f"unknown option {key!r} in the config file")
        sections[owner[0]][key] = value
    choices = {a.dest: a.choices for a in build_parser()._actions if a.choices}
    if "members" in sections["train"]:  # a count or "auto" (None), as the flag
        try:
            members = _members(sections["train"].pop("members"))
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"{source}: train.members: {e}") from None
    else:
        members = None
    for section, values in sections.items():
        sections[section] = coerce_fields(_SECTIONS[section], values, source=source, error=ConfigError,
                                          choices=choices, prefix=f"{section}.")
    for section, names in fields_of.items():
        for name in names:
            v = getattr(args, name, None)
            if v is not None:
                sections[section][name] = v
    members = sections["train"].pop("members", members)
    if members != "auto" and members is not None:
        sections["train"]["members"] = members
    if "units" in sections["model"]:
        units = sections["model"]["units"]
        try:
            sections["model"]["units"] = _units(",".join(map(str, units)) if isinstance(units, list | tuple) else units)
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"{source}: model.units: {e}") from None
    if "quantiles" in sections["model"]:
        try:
            sections["model"]["quantiles"] = _quantiles(sections["model"]["quantiles"])
        except argparse.ArgumentTypeError as e:
            raise ConfigError(f"{source}: model.quantiles: {e}") from None
    if sections["train"].get("per_replica_batch") and sections["train"].get("global_batch"):
        raise ConfigError("set either --per-replica-batch-size or --global-batch-size, not both")
    cfg = Config(**{k: c(**sections[k]) for k, c in _SECTIONS.items()})
    check(cfg)
    return cfg


def check(cfg: Config) -> None:
    if not cfg.data.data:
        raise ConfigError("--data is required: the dataset directory written by preprocessing")
    if not cfg.runtime.job_dir:
        raise ConfigError("--job-dir is required: where checkpoints, exports and reports go")
    t = cfg.train
    if t.epochs < 1:
        raise ConfigError("--epochs must be >= 1")
    if t.members is not None and t.members < 1:
        raise ConfigError("--members must be >= 1 (1: a single network) or auto")
    if not 0 <= cfg.model.dropout < 1:
        raise ConfigError("--dropout must be in [0, 1)")
    if not 0 <= cfg.train.ema < 1:
        raise ConfigError("--ema must be in [0, 1): the momentum of the weights' moving average (e.g. 0.99), 0 disables")
    if cfg.runtime.calibrate and not cfg.model.quantiles:
        raise ConfigError("--calibrate adjusts quantile levels: add --quantiles (e.g. 0.1,0.5,0.9)")
    for name in ("per_replica_batch", "global_batch"):
        v = getattr(t, name)
        if v is not None and v < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")


def load_config_file(path: str) -> dict[str, Any]:
    """A JSON or YAML config file (local, or gs:// through tf.io.gfile, imported only then)."""
    if "://" in path:
        import tensorflow as tf

        with tf.io.gfile.GFile(path) as f:
            text = f.read()
    else:
        if not os.path.exists(path):
            raise ConfigError(f"--config {path} does not exist")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    if path.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(text) or {}
    return json.loads(text)
