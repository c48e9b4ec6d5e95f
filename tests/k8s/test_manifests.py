"""Kubernetes manifests, offline: real `kubectl kustomize`, schema validation, the fields that
must agree, and the pods' start-up path run for real as local processes."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ("gpu", "cpu-small")
K8S_VERSION = "1.32.0"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def render(overlay, image="", data="", job_dir=""):
    proc = subprocess.run([str(ROOT / "k8s" / "render.sh"), overlay, image, data, job_dir], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def objects(text):
    docs = [d for d in yaml.safe_load_all(text) if d]
    return {(d["kind"], d["metadata"]["name"].rsplit("-", 1)[0] if d["kind"] == "ConfigMap" else d["metadata"]["name"]): d
            for d in docs}


def env_of(container):
    return {e["name"]: e for e in container["env"]}


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_render_and_validate_against_kubernetes_schemas(overlay, tmp_path):
    text = render(overlay)
    path = tmp_path / "rendered.yaml"
    path.write_text(text)
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "kubernetes-validate"), "--strict",
                           "-k", K8S_VERSION, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" passed for resource ") == 5, proc.stdout


@needs_kubectl
@pytest.mark.parametrize("overlay,workers,gpus", [("gpu", 4, 1), ("cpu-small", 2, 0)])
def test_fields_that_must_agree(overlay, workers, gpus):
    objs = objects(render(overlay))
    job, svc = objs[("Job", "seqscale-train")], objs[("Service", "seqscale-workers")]
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = env_of(c)
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == workers == int(env["SEQSCALE_NUM_WORKERS"]["value"])
    assert spec["backoffLimit"] == 3 * workers
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert pod["subdomain"] == svc["metadata"]["name"]
    port = svc["spec"]["ports"][0]["port"]
    assert env["SEQSCALE_HOST_PATTERN"]["value"] == f"{job['metadata']['name']}-{{index}}.{svc['metadata']['name']}:{port}"
    assert c["ports"][0]["containerPort"] == port
    assert env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    assert env["PYTHONUNBUFFERED"]["value"] == "1"
    # restarts: evictions ignored, bad config/data (2) and the loss guard (3) fail the job at once,
    # survivors of a lost peer (4, training/__main__.py) do not count
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0]["action"] == "Ignore" and rules[0]["onPodConditions"][0]["type"] == "DisruptionTarget"
    assert rules[1]["action"] == "FailJob" and rules[1]["onExitCodes"]["values"] == [2, 3]
    assert rules[2]["action"] == "Ignore" and rules[2]["onExitCodes"]["values"] == [4]
    from training.__main__ import EXIT_CONFIG, EXIT_GUARD, EXIT_PEER_LOST

    assert (EXIT_CONFIG, EXIT_GUARD, EXIT_PEER_LOST) == (2, 3, 4)
    assert pod["restartPolicy"] == "Never"
    # security
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    sa = objs[("ServiceAccount", "seqscale-trainer")]
    assert "iam.gke.io/gcp-service-account" in sa["metadata"]["annotations"]
    assert "secret" not in json.dumps(job).lower()
    # resources and image
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["image"].rsplit(":", 1)[1] not in ("", "latest")
    assert c["command"] == ["python", "-m", "training"]
    dshm = [v for v in pod["volumes"] if v["name"] == "dshm"][0]
    assert dshm["emptyDir"]["medium"] == "Memory"
    if gpus:
        assert c["resources"]["limits"]["nvidia.com/gpu"] == gpus
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu" and pod["nodeSelector"]
    else:
        assert "nvidia.com/gpu" not in json.dumps(c["resources"])


@needs_kubectl
def test_render_takes_image_and_paths_and_refuses_latest():
    objs = objects(render("gpu", "registry.example.com/team/seqscale:2.0.1", "gs://b/d", "gs://b/j"))
    (c,) = objs[("Job", "seqscale-train")]["spec"]["template"]["spec"]["containers"]
    assert c["image"] == "registry.example.com/team/seqscale:2.0.1"
    paths = objs[("ConfigMap", "seqscale-paths")]["data"]
    assert paths == {"data": "gs://b/d", "job-dir": "gs://b/j"}
    proc = subprocess.run([str(ROOT / "k8s" / "render.sh"), "gpu", "registry.example.com/x:latest"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "pinned tag" in proc.stderr


# ------------------------------------------------------------------ pods as local processes


def free_base_port(n):
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        try:
            socks = []
            for i in range(n):
                t = socket.socket()
                t.bind(("127.0.0.1", base + i))
                socks.append(t)
            for t in socks:
                t.close()
            return base
        except OSError:
            for t in socks:
                t.close()
    pytest.fail("no free port range")


def pod_commands(overlay, data, job_dir, config_dir, train_overrides):
    """The rendered Job's container command, args and env for each index, as the kubelet would run them."""
    objs = objects(render(overlay, "", str(data), str(job_dir)))
    job = objs[("Job", "seqscale-train")]
    (c,) = job["spec"]["template"]["spec"]["containers"]
    maps = {k[1]: v["data"] for k, v in objs.items() if k[0] == "ConfigMap"}
    # the config volume: the ConfigMap's train.yaml, with this test's (shorter) training
    cfg = yaml.safe_load(maps["seqscale-train-config"]["train.yaml"])
    for section, values in train_overrides.items():
        cfg.setdefault(section, {}).update(values)
    (config_dir / "train.yaml").write_text(yaml.safe_dump(cfg))
    workers = job["spec"]["completions"]
    out = []
    for index in range(workers):
        env = {}
        for e in c["env"]:
            if "value" in e:
                env[e["name"]] = e["value"]
            elif "configMapKeyRef" in e["valueFrom"]:
                ref = e["valueFrom"]["configMapKeyRef"]
                env[e["name"]] = maps[ref["name"].rsplit("-", 1)[0]][ref["key"]]
            else:  # the downward API annotation of an Indexed Job pod
                env[e["name"]] = str(index)
        # every "pod" is 127.0.0.1 here: only the host part of the pattern differs from the cluster
        env["SEQSCALE_HOST_PATTERN"] = "127.0.0.1:{port}"
        args = [a.replace("/etc/seqscale", str(config_dir)) for a in c["args"]]
        args = [_expand(a, env) for a in args]
        env["MPLCONFIGDIR"] = str(config_dir / "mpl")
        out.append((c["command"] + args, env))
    return out


def _expand(arg, env):
    for k, v in env.items():
        arg = arg.replace(f"$({k})", v)
    return arg


def start_pods(commands, base_port):
    procs = []
    for cmd, env in commands:
        full = {**os.environ, **env, "SEQSCALE_BASE_PORT": str(base_port), "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [sys.executable if cmd[0] == "python" else cmd[0], *cmd[1:]]
        procs.append(subprocess.Popen(cmd, env=full, cwd=str(ROOT), stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True, start_new_session=True))
    return procs


def wait_all(procs, timeout):
    deadline = time.time() + timeout
    outs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                if q.poll() is None:
                    os.killpg(q.pid, signal.SIGKILL)
            pytest.fail("a pod did not finish in time")
        outs.append(out)
    return [p.returncode for p in procs], outs


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from tests.training.conftest import build_dataset

    return build_dataset(tmp_path_factory.mktemp("k8sds"))


@needs_kubectl
@pytest.mark.slow
def test_rendered_pods_train_and_the_chief_exports(tiny_dataset, tmp_path):
    job_dir = tmp_path / "job"
    cmds = pod_commands("cpu-small", tiny_dataset, job_dir, tmp_path,
                        {"train": {"epochs": 2, "max_steps_per_epoch": 10}, "model": {"units": [16]}})
    assert [env["JOB_COMPLETION_INDEX"] for _, env in cmds] == ["0", "1"]
    codes, outs = wait_all(start_pods(cmds, free_base_port(2)), timeout=300)
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outs)
    assert "worker 0 of 2 (chief)" in outs[0] and "worker 1 of 2 (worker)" in outs[1]
    assert (job_dir / "export" / "saved_model.pb").exists() and (job_dir / "eval.json").exists()


@needs_kubectl
@pytest.mark.slow
def test_lost_pod_gang_restart_resumes(tiny_dataset, tmp_path):
    job_dir = tmp_path / "job"
    cmds = pod_commands("cpu-small", tiny_dataset, job_dir, tmp_path,
                        {"train": {"epochs": 4, "max_steps_per_epoch": 60, "patience": 0}, "model": {"units": [16]},
                         "runtime": {"evaluate": False}})
    procs = start_pods(cmds, free_base_port(2))
    hist = job_dir / "history.json"
    deadline = time.time() + 240
    while time.time() < deadline:
        if hist.exists() and len(json.loads(hist.read_text())["epochs"]) >= 2:
            break
        assert all(p.poll() is None for p in procs), "training ended before the pod could be lost"
        time.sleep(0.05)
    os.killpg(procs[1].pid, signal.SIGKILL)  # the node under pod 1 disappears
    codes, outs = wait_all(procs, timeout=180)  # the survivor must fail, not hang
    assert codes[1] == -9 and codes[0] == 4, outs[0][-2000:]  # 4: a peer was lost (not its own fault)
    assert "a peer worker stopped or became unreachable" in outs[0]
    done = len(json.loads(hist.read_text())["epochs"])
    codes, outs = wait_all(start_pods(cmds, free_base_port(2)), timeout=300)  # the Job recreates both pods
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outs)
    epochs = [e["epoch"] for e in json.loads(hist.read_text())["epochs"]]
    assert epochs[-1] == 4 and sorted(set(epochs)) == [1, 2, 3, 4] and len(epochs) - 4 <= 1
    # resumed after the last epoch whose backup was written: the one history shows, or (when the
    # pod died between writing history.json and the backup) that epoch again; never from scratch
    assert (f"Epoch {done + 1}/4" in outs[0] or f"Epoch {done}/4" in outs[0]) and "Epoch 1/4" not in outs[0]
