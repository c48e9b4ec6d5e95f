"""What users run, as shipped: the trainer image's install in a fresh venv running the rendered
Kubernetes pods end to end, and the Beam worker image's install in a fresh venv serving as the
SDK worker environment of a real portable Beam run (the path Dataflow, Flink and Spark share:
pipeline proto, pickled DoFns executed in another process that has only what workers have).

The installs are not restated here: tests/dockerfile.py executes the Dockerfiles' own lines.
"""

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.dockerfile import ROOT, Build, parse
from tests.helpers import job_args, multi_series, write_files

pytestmark = pytest.mark.slow
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def imports(python, module, cwd):
    """(ok, file or error) of importing `module` with the given interpreter, outside the repo."""
    proc = subprocess.run([str(python), "-c", f"import {module}; print({module}.__file__)"], capture_output=True,
                          text=True, timeout=120, cwd=str(cwd), env={"PATH": os.environ["PATH"], **QUIET})
    return proc.returncode == 0, (proc.stdout.strip() or proc.stderr.strip().splitlines()[-1])


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ------------------------------------------------------------------ the trainer image


@pytest.fixture(scope="module")
def trainer_image(tmp_path_factory):
    return Build(ROOT / "docker" / "trainer.Dockerfile", "trainer", tmp_path_factory.mktemp("trainer-image"))


def test_trainer_image_has_the_trainer_and_no_beam(trainer_image, tmp_path):
    ok, where = imports(trainer_image.python, "training.train", tmp_path)
    assert ok and where.startswith(str(trainer_image.venv)), where  # the installed wheel, not the repo
    for module in ("tensorflow", "tf_keras", "tensorboard", "matplotlib", "pyarrow", "yaml"):
        assert imports(trainer_image.python, module, tmp_path)[0], module
    assert imports(trainer_image.python, "apache_beam", tmp_path) == (False, "ModuleNotFoundError: No module "
                                                                               "named 'apache_beam'")
    assert trainer_image.skipped == ["useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin "
                                     "seqscale"]
    assert trainer_image.env["TF_USE_LEGACY_KERAS"] == "1"


def test_rendered_pods_run_on_the_trainer_image_through_export_and_eval(trainer_image, tmp_path):
    from tests.k8s.pods import free_base_port, pod_commands, render, start_pods, wait_all
    from tests.training.conftest import build_dataset

    data = build_dataset(tmp_path / "ds")
    objects = render("cpu-small", image="registry.example.com/seqscale-trainer:0.1.0", data=str(data),
                     job_dir=str(tmp_path / "runs"), run="shipped")
    cmds = pod_commands(objects, tmp_path, {"train": {"epochs": 2, "max_steps_per_epoch": 8, "members": 1},
                                            "model": {"units": [16]}})
    cmds = [(cmd, {**trainer_image.env, **env}) for cmd, env in cmds]  # the image's ENV, then the pod's
    pods = tmp_path / "pod-cwd"
    pods.mkdir()
    procs = start_pods(cmds, free_base_port(len(cmds)), python=str(trainer_image.python), cwd=pods, clean_env=True)
    codes, outs = wait_all(procs, timeout=420)
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outs)
    job_dir = tmp_path / "runs" / "shipped"
    report = json.loads((job_dir / "eval.json").read_text())
    assert (job_dir / "export" / "saved_model.pb").exists() and (job_dir / "loss.png").exists()
    assert report["model"]["original"]["rmse"] > 0 and "persistence" in report["baselines"]


# ------------------------------------------------------------------ the Beam worker image


@pytest.fixture(scope="module")
def worker_image(tmp_path_factory):
    return Build(ROOT / "docker" / "beam.Dockerfile", "worker", tmp_path_factory.mktemp("worker-image"))


def wait_for_port(port, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the worker pool exited at start-up"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"the worker pool did not listen on {port} within {timeout} s")


@contextlib.contextmanager
def worker_pool(image, tmp_path):
    """Beam's worker pool in the image's venv; yields its port. It starts each SDK worker as
    `python` from PATH: it must be the image's."""
    port = free_port()
    cwd = tmp_path / "worker-cwd"
    cwd.mkdir()
    with open(tmp_path / "pool.log", "w") as log:
        pool = subprocess.Popen([str(image.python), "-m", "apache_beam.runners.worker.worker_pool_main",
                                 f"--service_port={port}"], cwd=str(cwd), stdout=log, stderr=subprocess.STDOUT,
                                env={"PATH": f"{image.venv / 'bin'}:{os.environ['PATH']}", "HOME": str(cwd),
                                     **QUIET}, start_new_session=True)
    try:
        wait_for_port(port, pool)
        yield port
    finally:
        os.killpg(pool.pid, signal.SIGKILL)
        pool.wait(timeout=30)


def portable_flags(port):
    return ["--runner", "PortableRunner", "--job_endpoint", "embed", "--environment_type", "EXTERNAL",
            "--environment_config", f"localhost:{port}"]


def test_worker_image_has_the_job_and_no_tensorflow(worker_image, tmp_path):
    ok, where = imports(worker_image.python, "preprocessing.transforms", tmp_path)
    assert ok and where.startswith(str(worker_image.venv)), where
    assert imports(worker_image.python, "tensorflow", tmp_path) == (False, "ModuleNotFoundError: No module "
                                                                             "named 'tensorflow'")


def test_portable_run_on_the_worker_image_equals_the_direct_run(worker_image, tmp_path):
    inputs = write_files(multi_series(), tmp_path / "in", 3, "parquet")
    direct, portable = tmp_path / "direct", tmp_path / "portable"
    base = [sys.executable, "-m", "preprocessing", *job_args(inputs, "OUT", look_back=12, horizon=2)]

    def job(out, *extra, timeout=300):
        cmd = [str(out) if a == "OUT" else a for a in base] + list(extra)
        t0 = time.time()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(ROOT))
        assert proc.returncode == 0, proc.stderr[-3000:]
        return time.time() - t0, proc.stderr

    direct_seconds, _ = job(direct)
    with worker_pool(worker_image, tmp_path) as port:
        # bounded: a worker that cannot import what the job needs makes the job wait, not fail
        portable_seconds, stderr = job(portable, *portable_flags(port), timeout=240)
    pool_log = (tmp_path / "pool.log").read_text()
    assert "Starting worker" in pool_log, pool_log[-2000:]  # the DoFns ran in the image's Python
    assert "runner PortableRunner" in stderr and " rows read, " in stderr  # the summary reaches the launcher
    shards = sorted(p.name for p in direct.iterdir() if p.suffix == ".tfrecord")
    assert shards and shards == sorted(p.name for p in portable.iterdir() if p.suffix == ".tfrecord")
    assert [sha256(direct / s) for s in shards] == [sha256(portable / s) for s in shards]
    a, b = (json.loads((d / "metadata.json").read_text()) for d in (direct, portable))
    for m in (a, b):
        m.pop("created")
        m["options"].pop("output")
    assert a == b
    print(f"\ndirect {direct_seconds:.1f} s, portable on the worker image {portable_seconds:.1f} s")


# ------------------------------------------------------------------ the seqscale-predict worker image


@pytest.fixture(scope="module")
def predict_image(tmp_path_factory):
    return Build(ROOT / "docker" / "beam.Dockerfile", "predict-worker", tmp_path_factory.mktemp("predict-image"))


def test_predict_image_serves_the_export_without_keras(predict_image, tmp_path):
    ok, where = imports(predict_image.python, "prediction.pipeline", tmp_path)
    assert ok and where.startswith(str(predict_image.venv)), where
    assert imports(predict_image.python, "tensorflow", tmp_path)[0]
    for module in ("tf_keras", "matplotlib"):
        assert imports(predict_image.python, module, tmp_path) == (
            False, f"ModuleNotFoundError: No module named '{module}'"), module


def test_portable_predict_on_the_predict_image_equals_the_direct_run(predict_image, tmp_path):
    """Forecast and score mode with the DoFns and the model in the image's Python (the Dataflow path)."""
    import pandas as pd

    from tests.prediction.test_forecast import make_export

    export, _ = make_export(tmp_path / "e", ("--scale-by", "series"))
    raw = tmp_path / "e" / "raw.parquet"

    def predict(out, *extra, timeout=300):
        proc = subprocess.run([sys.executable, "-m", "prediction", "--export", str(export), "--input", str(raw),
                               "--output", str(out), *extra], capture_output=True, text=True, timeout=timeout,
                              cwd=str(ROOT), env={**os.environ, **QUIET})
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads((out / "predictions.json").read_text())

    def table(out, result):
        return pd.concat(pd.read_parquet(out / f) for f in result["files"]["forecasts"]).sort_values(
            ["series", "origin_time"]).reset_index(drop=True)

    runs = {}
    for mode, extra in (("forecast", ()), ("score", ("--split", "test"))):
        runs[("direct", mode)] = predict(tmp_path / f"direct-{mode}", *extra)
    with worker_pool(predict_image, tmp_path) as port:
        for mode, extra in (("forecast", ()), ("score", ("--split", "test"))):
            runs[("portable", mode)] = predict(tmp_path / f"portable-{mode}", *extra, *portable_flags(port),
                                               timeout=300)
    assert "Starting worker" in (tmp_path / "pool.log").read_text()
    for mode in ("forecast", "score"):
        a, b = runs[("direct", mode)], runs[("portable", mode)]
        pd.testing.assert_frame_equal(table(tmp_path / f"direct-{mode}", a), table(tmp_path / f"portable-{mode}", b))
        assert a["counts"] == b["counts"]
    assert runs[("portable", "score")]["report"]["model"]["original"]["rmse"] == pytest.approx(
        runs[("direct", "score")]["report"]["model"]["original"]["rmse"], rel=1e-9)


# ------------------------------------------------------------------ what the images are built from


def base_images():
    out = {}
    for line in (ROOT / "docker" / "base-images.env").read_text().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.partition("=")
            out[k] = v
    return out


def test_base_images_match_the_pinned_versions():
    pins = dict(re.findall(r"^([\w.-]+)==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M))
    bases = base_images()
    assert bases["TRAINER_BASE"].split("@")[0] == f"tensorflow/tensorflow:{pins['tensorflow']}-gpu"
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert bases["BEAM_IMAGE"].split("@")[0] == f"apache/beam_python{py}_sdk:{pins['apache-beam']}"
    # the Dockerfiles' own defaults say the same (a plain `docker build` gets the same base)
    assert parse(ROOT / "docker" / "trainer.Dockerfile")["trainer"].base == bases["TRAINER_BASE"].split("@")[0]
    assert parse(ROOT / "docker" / "beam.Dockerfile")["worker"].base == bases["BEAM_IMAGE"].split("@")[0]


def test_images_install_with_constraints_dependencies_before_code_and_run_as_non_root():
    for name, stage in (("trainer.Dockerfile", "trainer"), ("beam.Dockerfile", "worker"),
                        ("beam.Dockerfile", "predict-worker")):
        lines = parse(ROOT / "docker" / name)[stage].lines
        runs = [arg for op, arg in lines if op == "RUN" and "pip install" in arg]
        assert "-c constraints.txt" in runs[0] and "--no-deps" in runs[1], runs
        copies = [arg for op, arg in lines if op == "COPY"]
        assert copies[0] == "setup.py constraints.txt ./"  # the dependency layer sees no code
        assert ("USER", "1000:1000") in lines
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"docs", "demo-out", "runs", ".venv", "**/*.parquet", "**/*.csv"} <= set(ignored)
