"""The job dir rule: whole-file writes, reads that cannot tear, under real concurrency."""

import json
import os
import subprocess
import sys

import pytest

import training  # noqa: F401
from training import jobdir
from training.state import StateStore

PY = sys.executable


def test_write_atomic_uses_a_unique_temp_name_and_leaves_only_the_file(tmp_path):
    path = str(tmp_path / "d" / "x.json")
    jobdir.write_atomic(path, '{"a": 1}')
    jobdir.write_atomic(path, b'{"a": 22}')
    assert json.loads(jobdir.read_bytes(path)) == {"a": 22}
    assert os.listdir(tmp_path / "d") == ["x.json"]


def test_errors_name_the_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(jobdir.JobDirError, match=f"cannot write {blocker}/sub/x.json"):
        jobdir.write_atomic(str(blocker / "sub" / "x.json"), "{}")
    with pytest.raises(jobdir.JobDirError, match="cannot read .*missing.json"):
        jobdir.read_bytes(str(tmp_path / "missing.json"))
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "early_stopping.json").write_text('{"0": {"best"')
    with pytest.raises(jobdir.JobDirError, match="early_stopping.json is not valid JSON"):
        StateStore(str(tmp_path / "s"), "early_stopping", writer=False).load(0)


def test_states_live_in_memory_and_only_the_writer_writes(tmp_path):
    reader = StateStore(str(tmp_path), "es", writer=False)
    writer = StateStore(str(tmp_path), "es", writer=True)
    for e in range(8):
        reader.save(e, {"e": e})
        writer.save(e, {"e": e})
    assert not (tmp_path / "es.json").exists() or reader.states() == writer.states()
    assert sorted(map(int, writer.states())) == [3, 4, 5, 6, 7]
    assert json.loads((tmp_path / "es.json").read_text()) == writer.states()
    assert StateStore(str(tmp_path), "es", writer=False).load(6) == {"e": 6}


@pytest.mark.slow
def test_no_torn_read_with_one_writer_and_three_readers(tmp_path):
    seconds = 20
    cmd = [PY, "-m", "tests.training.stress_state"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen([*cmd, "write", str(tmp_path), str(seconds + 5)], stdout=subprocess.PIPE, text=True,
                              env=env)]
    procs += [subprocess.Popen([*cmd, "read", str(tmp_path), str(seconds)], stdout=subprocess.PIPE, text=True, env=env)
              for _ in range(3)]
    outs = [p.communicate(timeout=seconds + 90)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    writes = int(outs[0][0])
    reads = [int(o[0]) for o in outs[1:]]
    torn = [int(o[1]) for o in outs[1:]]
    assert writes > 1000 and min(reads) > 1000, (writes, reads)  # thousands of overlapping iterations
    assert torn == [0, 0, 0]
