"""Trainer configuration: flags, config files, defaults spelled once (no TensorFlow needed)."""

import json
import re

import pytest

from training.config import (
    ConfigError,
    DataConfig,
    ModelConfig,
    TrainConfig,
    build_parser,
    load_config_file,
    resolve,
)
from training.lr_plan import batch_sizes


def test_batch_flags_are_unambiguous():
    assert batch_sizes(TrainConfig(global_batch=96), 3) == (32, 96)
    with pytest.raises(ConfigError, match="does not divide by the 5 replicas"):
        batch_sizes(TrainConfig(global_batch=96), 5)
    with pytest.raises(SystemExit):  # argparse: mutually exclusive
        build_parser().parse_args(["--global-batch-size", "64", "--per-replica-batch-size", "32"])


def test_config_file_sections_and_flag_override():
    args = build_parser().parse_args(["--data", "d", "--job-dir", "j", "--epochs", "7"])
    cfg = resolve(args, {"train": {"epochs": 3, "base_lr": 0.01}, "model": {"units": [16, 8]}, "dropout": 0.3})
    assert cfg.train.epochs == 7 and cfg.train.base_lr == 0.01
    assert cfg.model.units == (16, 8) and cfg.model.dropout == 0.3  # not the default
    with pytest.raises(ConfigError, match="unknown option"):
        resolve(args, {"learning_rate": 1})


def test_help_shows_the_dataclass_defaults():
    helps = {a.dest: a.help for a in build_parser()._actions}
    assert helps["shuffle_buffer"].endswith(f"(default: {DataConfig.shuffle_buffer})")
    assert helps["dropout"].endswith(f"(default: {ModelConfig.dropout})")
    assert helps["units"].endswith("(default: 128,64)")
    assert helps["base_lr"].endswith(f"(default: {TrainConfig.base_lr})")


def test_load_config_file_json_and_yaml(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"train": {"epochs": 2}}))
    (tmp_path / "c.yaml").write_text("train:\n  epochs: 3\nmodel:\n  units: [8]\n")
    assert load_config_file(str(tmp_path / "c.json")) == {"train": {"epochs": 2}}
    assert load_config_file(str(tmp_path / "c.yaml")) == {"train": {"epochs": 3}, "model": {"units": [8]}}
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("module,argv,code", [
    ("training", ["--help"], 0),
    ("training.doctor", ["--help"], 0),
    ("training", ["--data", "somewhere"], 2),  # a config error: --job-dir is missing
])
def test_help_and_config_errors_do_not_import_tensorflow(module, argv, code):
    import subprocess
    import sys

    script = (f"import runpy, sys\nsys.argv = ['x', *sys.argv[1:]]\ntry:\n    runpy.run_module({module!r}, "
              "run_name='__main__')\nexcept SystemExit as e:\n    print('exit', e.code, 'tensorflow' in sys.modules, "
              "file=sys.stderr)\n")
    out = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=60)
    assert out.stderr.strip().splitlines()[-1] == f"exit {code} False", out.stderr[-2000:]


def test_mistyped_trainer_flags_name_the_closest_flag(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--data", "d", "--job-dir", "j", "--base_lr", "1e-3", "--epoch", "3"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown option(s) --base_lr (did you mean --base-lr?), --epoch (did you mean --epochs?)" in err
    assert "usage:" not in err  # one line, not the usage block


def test_config_file_values_are_checked_and_converted(tmp_path):
    import yaml

    args = build_parser().parse_args(["--data", "d", "--job-dir", "j"])
    raw = yaml.safe_load("train:\n  base_lr: 1e-3\n  epochs: '7'\n  mixed_precision: 'no'\nmodel:\n  units: 32,16\n")
    assert raw["train"]["base_lr"] == "1e-3"  # PyYAML (YAML 1.1) reads this as a string
    cfg = resolve(args, raw, source="train.yaml")
    assert cfg.train.base_lr == 1e-3 and cfg.train.epochs == 7 and cfg.train.mixed_precision is False
    assert cfg.model.units == (32, 16)
    cases = [({"train": {"epochs": "many"}}, "train.yaml: train.epochs: expected an integer, got 'many'"),
             ({"train": {"epochs": 2.5}}, "train.yaml: train.epochs: expected an integer, got 2.5"),
             ({"base_lr": [1]}, "train.yaml: train.base_lr: expected a number, got [1]"),
             ({"train": {"optimizer": "adagrad"}}, "train.yaml: train.optimizer: expected one of adam, adamw, sgd"),
             ({"model": {"units": [0]}}, "train.yaml: model.units:"),
             ({"model": {"bidirectional": "maybe"}}, "train.yaml: model.bidirectional: expected true or false")]
    for values, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            resolve(args, values, source="train.yaml")


def test_keras_verbosity_follows_the_terminal():
    from training.train import keras_verbosity

    assert keras_verbosity("bar") == 1 and keras_verbosity("line") == 2
    assert keras_verbosity("auto") == (1 if __import__("sys").stdout.isatty() else 2)


def test_members_auto_is_the_default_and_a_count_or_auto_from_flags_or_file():
    from training.config import AUTO_MEMBERS, AUTO_MEMBERS_MAX_TRAIN_WINDOWS, default_members

    def members(argv, file=None):
        return resolve(build_parser().parse_args(["--data", "d", "--job-dir", "j", *argv]), file).train.members

    assert members([]) is None and members(["--members", "auto"]) is None and members(["--members", "AUTO"]) is None
    assert members(["--members", "2"]) == 2
    assert members([], {"train": {"members": "auto"}}) is None and members([], {"members": 4}) == 4
    assert members([], {"train": {"members": "3"}}) == 3  # YAML/JSON strings as numbers, like every field
    assert members([], {"train": {"members": 3.0}}) == 3
    assert members(["--members", "auto"], {"train": {"members": 4}}) is None  # the flag wins, auto too
    assert members(["--members", "1"], {"train": {"members": "auto"}}) == 1
    with pytest.raises(ConfigError, match=r"c.yaml: train.members: --members takes a count of networks or auto"):
        resolve(build_parser().parse_args(["--data", "d", "--job-dir", "j"]), {"train": {"members": "many"}},
                source="c.yaml")
    with pytest.raises(ConfigError, match="--members must be >= 1"):
        resolve(build_parser().parse_args(["--data", "d", "--job-dir", "j"]), {"train": {"members": 0}})
    for bad in (1.5, True):
        with pytest.raises(ConfigError, match="train.members: --members takes a count"):
            resolve(build_parser().parse_args(["--data", "d", "--job-dir", "j"]), {"train": {"members": bad}})
    for bad in ("0", "-1", "three", "1.5", "inf"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--members", bad])
    # three networks up to the threshold, one above it
    assert AUTO_MEMBERS == 3 and AUTO_MEMBERS_MAX_TRAIN_WINDOWS == 50_000
    assert [default_members(n) for n in (0, 1_000, 50_000, 50_001, 10**9)] == [3, 3, 3, 1, 1]
