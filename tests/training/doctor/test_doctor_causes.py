"""The doctor on real data (the demo's household power) with each usual mistake made through
seqscale's own flags and input files: the first failing check must be the cause, for five
seeds, and the cure (seqscale's defaults) must raise no FAIL, for the same five seeds.

The checks before a cause's own check are run with it (they must not FAIL first); checks
that the mistake cannot touch (the data checks, for a model flag) are covered by the cure.
"""

import shutil

import numpy as np
import pytest

import training  # noqa: F401
from preprocessing.cli import run as preprocess
from tests.training.conftest import POWER_FEATURES, config
from training.data import load_manifest
from training.doctor import run_checks

SEEDS = range(5)

# cause: (dataset, trainer flags, checks run, the check that must fail, words its evidence must hold)
CAUSES = {
    "unscaled data": ("unscaled", [], ("scaling",), "scaling", "unscaled columns with large values: Voltage"),
    "target unrelated to its inputs": ("unrelated", [], ("scaling", "windows", "learnability"), "learnability",
                                       "nothing to learn"),
    "target leaked into the inputs": ("leak", [], ("scaling", "windows", "learnability"), "learnability",
                                      "input column 'next_hour' at the last input row alone predicts the target"),
    "too little capacity": ("good", ["--units", "1"], ("head", "capacity"), "capacity", "300 Adam steps at LR 0.003"),
    "wrong output activation": ("good", ["--head-activation", "sigmoid"], ("head",), "head",
                                "sigmoid output on a regression target is refused"),
    "LR too high": ("good", ["--base-lr", "1.0"], ("lr",), "lr", "far too high: above the valley"),
    "LR too low": ("good", ["--base-lr", "1e-6"], ("lr",), "lr", "far too low"),
    "batch too large": ("good", ["--global-batch-size", "quarter"], ("lr", "batch"), "batch", "4 steps per epoch"),
    "NaN inputs": ("nan", [], ("scaling",), "scaling", "sampled windows hold NaN/inf values, in Voltage"),
    # the capacity check failed first here, and its fix (more units) did not cure it
    "look-back of one row": ("short", [], ("scaling", "windows", "learnability", "head", "capacity"), "learnability",
                             "look-back 1: each window holds one row"),
}


@pytest.fixture(scope="module")
def power(power, tmp_path_factory):
    """The session's datasets plus "nan": the good dataset with NaN in 2% of the train windows'
    Voltage, as shards written by a producer without seqscale's checks would hold them
    (preprocessing itself refuses such rows by file, row and column)."""
    import tensorflow as tf

    from preprocessing.records import encode_block, frame, iter_frames
    from training.records import block_decoder

    nan = tmp_path_factory.mktemp("nan") / "data"
    shutil.copytree(power["good"], nan)
    m = load_manifest(str(nan))
    decode, volt = block_decoder(m, with_ids=True), list(m.features).index("Voltage")
    for shard in m.shards["train"]:
        path = nan / shard.file
        blocks = []
        for record in iter_frames(path.read_bytes()):
            b = {k: v.numpy() for k, v in decode(tf.constant(bytes(record))).items()}
            b["x"][::50, -1, volt] = np.nan
            blocks.append(frame(encode_block(b["x"], b["y"].reshape(len(b["y"]), *m.y_shape), b["t"], b["sid"])))
        path.write_bytes(b"".join(blocks))
    short = tmp_path_factory.mktemp("short") / "data"
    preprocess(["--input", str(power["raw"]["good"]), "--output", str(short), "--time-column", "date_time",
                "--targets", "target", "--features", ",".join(POWER_FEATURES), "--look-back", "1",
                "--train-shards", "2", "--eval-shards", "2"])
    return {**power, "nan": nan, "short": short, "raw": {**power["raw"], "short": power["raw"]["good"]}}


def flags_for(power, flags):
    windows = load_manifest(str(power["good"])).windows("train")
    return [str(windows // 4) if f == "quarter" else f for f in flags]


@pytest.mark.slow
@pytest.mark.parametrize("cause", list(CAUSES))
def test_the_doctor_names_the_cause_first_for_every_seed(power, cause, tmp_path):
    dataset, flags, only, check, words = CAUSES[cause]
    raw = [str(power["raw"][dataset])] if "windows" in only else None
    for seed in SEEDS:
        cfg = config(power[dataset], "--seed", str(seed), *flags_for(power, flags))
        verdicts = run_checks(cfg, raw=raw, out_dir=str(tmp_path / str(seed)), only=only)
        first_fail = next((v for v in verdicts if v.status == "FAIL"), None)
        assert first_fail is not None and first_fail.check == check, (cause, seed, verdicts)
        assert words in first_fail.evidence and first_fail.fix, (cause, seed, first_fail)


@pytest.mark.slow
def test_a_capacity_fail_with_a_short_look_back_names_the_look_back_first(power, tmp_path):
    from training.data import sample_windows
    from training.doctor.checks_model import check_capacity

    m = load_manifest(str(power["short"]))
    v = check_capacity(m, config(power["short"]), sample_windows(m, str(power["short"]), n=1024))
    assert v.status == "FAIL" and "raise --look-back to 25 first; if it still fails, add units" in v.fix, v
    good = load_manifest(str(power["good"]))  # a look-back reaching a season back: the fix stays "add units"
    v = check_capacity(good, config(power["good"], "--units", "1"), sample_windows(good, str(power["good"]), n=1024))
    assert v.status == "FAIL" and "--look-back" not in v.fix and "add units" in v.fix, v


@pytest.mark.slow
def test_the_cure_raises_no_fail_for_any_seed(power, tmp_path):
    """seqscale's defaults on the same real data: every check, five seeds, no FAIL and no WARN."""
    for seed in SEEDS:
        verdicts = run_checks(config(power["good"], "--seed", str(seed)), raw=[str(power["raw"]["good"])],
                              out_dir=str(tmp_path / str(seed)))
        assert [v.check for v in verdicts] == ["scaling", "windows", "learnability", "head", "capacity", "lr", "batch"]
        assert all(v.status == "PASS" for v in verdicts), (seed, [v for v in verdicts if v.status != "PASS"])


FALSE_ALARMS = {  # healthy setups the old doctor flagged, or could: no FAIL for any seed
    "SGD with a normal LR": ("good", ["--optimizer", "sgd", "--base-lr", "0.05"], ("lr",)),
    "AdamW at the default LR": ("good", ["--optimizer", "adamw"], ("lr",)),
    "a hard but learnable target": ("hard", [], ("scaling", "windows", "learnability", "lr")),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(FALSE_ALARMS))
def test_no_false_alarm(power, case, tmp_path):
    dataset, flags, only = FALSE_ALARMS[case]
    raw = [str(power["raw"][dataset])] if "windows" in only else None
    for seed in SEEDS:
        verdicts = run_checks(config(power[dataset], "--seed", str(seed), *flags), raw=raw,
                              out_dir=str(tmp_path / str(seed)), only=only)
        assert all(v.status == "PASS" for v in verdicts), (case, seed, [v for v in verdicts if v.status != "PASS"])


@pytest.mark.slow
def test_unrelated_targets_do_not_blame_the_learning_rate(power, tmp_path):
    """The old doctor told users to lower a correct LR ~300x when the target was unrelated."""
    for seed in SEEDS:
        (v,) = run_checks(config(power["unrelated"], "--seed", str(seed)), raw=None,
                          out_dir=str(tmp_path / str(seed)), only=("lr",))
        assert v.status != "FAIL", (seed, v)
