"""Rendered manifests -> the processes the kubelet would start: command, args and environment
of each worker pod, run on 127.0.0.1 (the host part of the worker addresses is the only
difference from the cluster). Shared by the manifest tests and the shipped-image test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def render_text(overlay, *, image="registry.example.com/seqscale-trainer:0.1.0", data="gs://b/data",
                job_dir="gs://b/runs", run="t1", extra=(), python=sys.executable):
    args = ["--overlay", overlay, "--image", image, "--data", str(data), "--job-dir", str(job_dir), *extra]
    if run:
        args += ["--run", run]
    return subprocess.run([python, str(ROOT / "k8s" / "render.py"), *args], capture_output=True, text=True,
                          timeout=120)


def render(overlay, **kw):
    proc = render_text(overlay, **kw)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind):
    (o,) = by_kind(objects, kind)
    return o


def config_maps(objects):
    """ConfigMaps by the name they were generated from (without -RUN-hash)."""
    out = {}
    for o in by_kind(objects, "ConfigMap"):
        run = o["metadata"]["labels"]["seqscale.dev/run"]
        out[o["metadata"]["name"].split(f"-{run}-")[0]] = o
    return out


def kubelet_env(container, pod_labels, pod_annotations, maps_by_name):
    """The container's environment as the kubelet builds it: values, downward API, ConfigMap keys,
    and $(VAR) references to variables defined earlier in the list."""
    env = {}
    for e in container["env"]:
        if "value" in e:
            value = e["value"]
            for k, v in env.items():
                value = value.replace(f"$({k})", v)
        elif "configMapKeyRef" in e["valueFrom"]:
            ref = e["valueFrom"]["configMapKeyRef"]
            value = maps_by_name[ref["name"]]["data"][ref["key"]]
        else:
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            source, key = path.split("[")
            value = {"metadata.labels": pod_labels, "metadata.annotations": pod_annotations}[source][key.strip("']")]
        env[e["name"]] = value
    return env


def pod_commands(objects, config_dir, train_overrides):
    """(command + args, env) of every worker of the rendered Job, with this test's training config."""
    job = one(objects, "Job")
    (c,) = job["spec"]["template"]["spec"]["containers"]
    maps = {o["metadata"]["name"]: o for o in by_kind(objects, "ConfigMap")}
    cfg = yaml.safe_load(config_maps(objects)["seqscale-train-config"]["data"]["train.yaml"])
    for section, values in train_overrides.items():
        cfg.setdefault(section, {}).update(values)
    (config_dir / "train.yaml").write_text(yaml.safe_dump(cfg))
    out = []
    for index in range(job["spec"]["completions"]):
        labels = {**job["spec"]["template"]["metadata"]["labels"], "batch.kubernetes.io/job-name": job["metadata"]["name"]}
        env = kubelet_env(c, labels, {"batch.kubernetes.io/job-completion-index": str(index)}, maps)
        env["SEQSCALE_HOST_PATTERN"] = "127.0.0.1:{port}"  # every "pod" is 127.0.0.1 here
        args = [a.replace("/etc/seqscale", str(config_dir)) for a in c["args"]]
        for k, v in env.items():
            args = [a.replace(f"$({k})", v) for a in args]
        env["MPLCONFIGDIR"] = str(config_dir / "mpl")
        env["HOME"] = str(config_dir)
        out.append((c["command"] + args, env))
    return out


def free_base_port(n):
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n > 65535:
            continue
        socks = []
        try:
            for i in range(n):
                t = socket.socket()
                t.bind(("127.0.0.1", base + i))
                socks.append(t)
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    pytest.fail("no free port range")


def start_pods(commands, base_port, *, python=sys.executable, cwd=ROOT, clean_env=False):
    """One process per pod. clean_env: only the pod's own environment (plus PATH), as in a container."""
    procs = []
    for cmd, env in commands:
        base = {"PATH": os.environ["PATH"]} if clean_env else dict(os.environ)
        full = {**base, **env, "SEQSCALE_BASE_PORT": str(base_port), "TF_CPP_MIN_LOG_LEVEL": "2"}
        cmd = [python if cmd[0] == "python" else cmd[0], *cmd[1:]]
        procs.append(subprocess.Popen(cmd, env=full, cwd=str(cwd), stdout=subprocess.PIPE,
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
