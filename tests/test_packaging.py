"""setup.py doubles as Beam's --setup_file: it must build an sdist holding both packages."""

import subprocess
import sys
import tarfile

import pytest


@pytest.mark.slow
def test_setup_py_builds_an_sdist_with_both_packages(tmp_path):
    # Beam's stager runs `setup.py sdist` on the launcher to ship the code to workers.
    proc = subprocess.run(
        [sys.executable, "setup.py", "sdist", "--dist-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (sdist,) = tmp_path.glob("seqscale-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    for module in ("preprocessing/pipeline.py", "contract/manifest.py", "training/__init__.py"):
        assert any(n.endswith(module) for n in names), module


def test_extras_by_role_keep_tensorflow_off_the_beam_workers_and_beam_out_of_the_trainer():
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[1] / "setup.py").read_text())
    lists: dict[str, list[str]] = {}
    for node in tree.body:  # NAME = ["req", ..., *OTHER]: a starred list is expanded
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            lists[node.targets[0].id] = [r for e in node.value.elts for r in (
                lists[e.value.id] if isinstance(e, ast.Starred) else [e.value])]
    names = {k: {r.split("=")[0].split("[")[0].split(">")[0].split("<")[0] for r in v} for k, v in lists.items()}
    worker = names["REQUIRED"] | names["PREPROCESS"]
    trainer = names["REQUIRED"] | names["TRAIN"]
    assert {"apache-beam", "pyarrow", "google-cloud-storage", "numpy"} <= worker
    assert not worker & {"tensorflow", "tf-keras", "tensorboard", "matplotlib"}
    assert {"tensorflow", "tf-keras", "tensorboard", "matplotlib"} <= trainer and "apache-beam" not in trainer
    predict = names["REQUIRED"] | names["PREDICT"]  # serves the export: Beam and TensorFlow, no Keras 2, no plots
    assert {"apache-beam", "tensorflow", "pyarrow"} <= predict and not predict & {"tf-keras", "matplotlib"}
    # what the benchmarks compare with is never a runtime dependency of any stage
    assert "lightgbm" in names["BENCH"] and not (worker | trainer | predict) & names["BENCH"] - {"pandas"}
