"""TF_CONFIG from the environment: pure functions, no TensorFlow."""

import json

import pytest

from training.cluster import (
    Cluster,
    ClusterError,
    from_tf_config,
    resolve,
    worker_hosts,
    write_path,
)


def test_tf_config_wins():
    tf_config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    c = resolve({"TF_CONFIG": json.dumps(tf_config), "JOB_COMPLETION_INDEX": "0"})
    assert c == Cluster(workers=("a:1", "b:2"), index=1)
    assert not c.is_chief and c.num_workers == 2


def test_indexed_job_builds_tf_config_from_service_dns():
    env = {"JOB_COMPLETION_INDEX": "2", "SEQSCALE_NUM_WORKERS": "4",
           "SEQSCALE_HOST_PATTERN": "seqscale-train-{index}.seqscale-workers:2222"}
    c = resolve(env)
    assert c.index == 2
    assert c.workers[3] == "seqscale-train-3.seqscale-workers:2222"
    assert c.tf_config() == {"cluster": {"worker": list(c.workers)}, "task": {"type": "worker", "index": 2}}


def test_port_pattern_for_local_processes():
    assert worker_hosts("127.0.0.1:{port}", 3, base_port=5000) == ("127.0.0.1:5000", "127.0.0.1:5001", "127.0.0.1:5002")


def test_single_process_without_env():
    c = resolve({})
    assert not c.multi_worker and c.is_chief and c.num_workers == 1


@pytest.mark.parametrize("env,match", [
    ({"JOB_COMPLETION_INDEX": "0"}, "worker count or host pattern"),
    ({"JOB_COMPLETION_INDEX": "5", "SEQSCALE_NUM_WORKERS": "2", "SEQSCALE_HOST_PATTERN": "w-{index}:1"}, "outside 0..1"),
    ({"TF_CONFIG": "{not json"}, "TF_CONFIG is not valid"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}})}, "not one of"),
    ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"], "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}})}, "worker tasks only"),
])
def test_bad_cluster_descriptions_say_why(env, match):
    with pytest.raises(ClusterError, match=match):
        resolve(env)


def test_patterns_that_cannot_tell_workers_apart():
    with pytest.raises(ClusterError, match="needs {index}"):
        worker_hosts("same-host:2222", 2)
    with pytest.raises(ClusterError, match="host:port"):
        worker_hosts("w-{index}", 2)


def test_write_path_sends_non_chief_to_scratch():
    chief, other = Cluster(("a:1", "b:1"), 0), Cluster(("a:1", "b:1"), 1)
    assert write_path("gs://b/job", chief, "logs") == "gs://b/job/logs"
    assert write_path("gs://b/job", other, "logs") == "gs://b/job/scratch/worker-1/logs"
    assert from_tf_config(json.dumps(chief.tf_config())) == chief
