"""The evaluation accumulators against numpy over the whole arrays: any batching, any merge order."""

import pickle

import numpy as np
import pytest

from evaluation.accumulators import (
    ClassificationAccumulator,
    ErrorSums,
    OriginSums,
    RegressionAccumulator,
)


def data(seed=0, w=1000, steps=3, targets=2):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(w, steps, targets)) * 10 + 100
    p = y + rng.normal(size=y.shape) * np.array([1.0, 2.0, 3.0])[None, :steps, None]
    last = y[:, :1, :] + rng.normal(size=(w, 1, targets))
    origins = rng.integers(0, 17, size=w) * 3600
    return y, p, np.repeat(last, steps, axis=1), origins


def reference(y, p, scale=None):
    err = p - y
    out = {"rmse": np.sqrt(np.mean(err ** 2)), "mae": np.mean(np.abs(err)), "mse": np.mean(err ** 2)}
    if scale:
        out["mase"] = out["mae"] / scale
    return out


def batched(y, p, last, origins, cuts):
    acc = RegressionAccumulator(y.shape[1], per_origin=True)
    parts = []
    for a, b in zip([0, *cuts], [*cuts, len(y)], strict=True):
        part = RegressionAccumulator(y.shape[1], per_origin=True)
        part.add(y[a:b], p[a:b], {"persistence": last[a:b], "zero": np.zeros_like(y[a:b])},
                 y_scaled=y[a:b] / 10, p_scaled=p[a:b] / 10, origins=origins[a:b])
        parts.append(part)
    for part in reversed(parts):  # merged out of order
        acc.merge(pickle.loads(pickle.dumps(part)))  # and through pickle, as a runner ships them
    return acc


@pytest.mark.parametrize("cuts", [[], [1], [7, 8, 500], list(range(10, 1000, 10))])
def test_pooled_and_per_step_metrics_equal_numpy_over_the_whole_arrays(cuts):
    y, p, last, origins = data()
    acc = batched(y, p, last, origins, cuts)
    assert acc.windows == len(y)
    for got, want in ((acc.model.metrics(2.5), reference(y, p, 2.5)),
                      (acc.baselines["persistence"].metrics(), reference(y, last)),
                      (acc.baselines["zero"].metrics(), reference(y, np.zeros_like(y))),
                      (acc.scaled.metrics(), reference(y / 10, p / 10))):
        assert got.keys() == want.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-12)
    steps = acc.model.per_step([1, 2, 3])
    for i, s in enumerate(steps):
        assert s["step"] == i + 1
        assert s["rmse"] == pytest.approx(np.sqrt(np.mean((p[:, i] - y[:, i]) ** 2)), rel=1e-12)
        assert s["mae"] == pytest.approx(np.mean(np.abs(p[:, i] - y[:, i])), rel=1e-12)
    # the steps' noise grows 1, 2, 3: a metric that pooled the wrong axis would not see it
    assert steps[0]["rmse"] < steps[1]["rmse"] < steps[2]["rmse"]


def test_per_origin_rows_equal_numpy_per_origin():
    y, p, last, origins = data(1)
    rows = batched(y, p, last, origins, [3, 400, 401]).origins.result("int")
    assert [int(r["origin"]) for r in rows] == sorted(set(origins.tolist()))
    for r in rows:
        mine = origins == int(r["origin"])
        assert r["windows"] == mine.sum()
        assert r["rmse"] == pytest.approx(np.sqrt(np.mean((p[mine] - y[mine]) ** 2)), rel=1e-12)
        assert r["persistence_rmse"] == pytest.approx(np.sqrt(np.mean((last[mine] - y[mine]) ** 2)), rel=1e-12)


def test_timestamps_are_labelled_and_no_persistence_means_no_persistence_column():
    o = OriginSums()
    o.add(np.array([0, 0]), np.ones((2, 1)), np.zeros((2, 1)), None)
    assert o.result("timestamp") == [{"origin": "1970-01-01T00:00:00.000000000", "windows": 2, "rmse": 1.0}]


def test_empty_and_one_window():
    e = ErrorSums(1)
    assert np.isnan(e.metrics()["rmse"])
    with pytest.raises(ValueError, match="2 target rows, not 1"):
        e.add(np.ones((1, 2, 1)), np.ones((1, 2, 1)))
    e.add(np.array([[1.0, 2.0]]), np.array([[1.5, 2.0]]))  # (windows, targets): one target row
    assert ErrorSums(1).merge(e).metrics() == pytest.approx({"rmse": 0.5 / np.sqrt(2), "mae": 0.25, "mse": 0.125})
    with pytest.raises(ValueError, match="origin"):
        RegressionAccumulator(1, per_origin=True).add(np.ones((1, 1)), np.ones((1, 1)), {})


def test_classification_accuracy_merges():
    y = np.array([0, 1, 1, 2, 2, 2])
    pred = np.array([0, 1, 2, 2, 2, 0])
    a = ClassificationAccumulator().add(y[:2], pred[:2], majority=2)
    b = ClassificationAccumulator().add(y[2:], pred[2:], majority=2)
    r = a.merge(b).result()
    assert r == {"windows": 6, "model": {"accuracy": 4 / 6}, "baselines": {"majority_class": {"accuracy": 3 / 6}}}


def test_the_engine_imports_neither_beam_nor_tensorflow():
    import subprocess
    import sys

    code = ("import sys, evaluation.accumulators, evaluation.report; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('apache_beam', 'tensorflow', 'tf_keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"
