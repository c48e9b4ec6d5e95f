"""Kubernetes manifests, offline: real `kubectl kustomize` through k8s/render.py, validation
against the Kubernetes schemas (and JobSet's vendored CRD schema), the fields that must agree,
the render's refusals, and the pods' start-up path run for real as local processes."""

import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.k8s.pods import (
    ROOT,
    by_kind,
    config_maps,
    free_base_port,
    kubelet_env,
    one,
    pod_commands,
    render,
    render_text,
    start_pods,
    wait_all,
)

OVERLAYS = ("gpu", "cpu-small")
K8S_VERSION = "1.32.0"
JOBSET_CRD = ROOT / "k8s" / "schemas" / "jobset.x-k8s.io_jobsets.v0.12.0.yaml"
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def kubernetes_validate(objects, tmp_path):
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(objects))
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "kubernetes-validate"), "--strict",
                           "-k", K8S_VERSION, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" passed for resource ") == len(objects), proc.stdout


def strict(schema):
    """A CRD's structural schema as strict JSON Schema: unknown fields are errors (the API server
    would drop them silently), int-or-string accepts both."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes")}
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("type") == "object" and "properties" in out and not schema.get("x-kubernetes-preserve-unknown-fields") \
            and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def validate_jobset(jobset, tmp_path):
    import jsonschema

    crd = yaml.safe_load(JOBSET_CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == jobset["apiVersion"].split("/")[1]]
    schema = strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    jsonschema.validate(jobset, schema)
    # and the Job inside it against the Kubernetes schema of a Job
    for rj in jobset["spec"]["replicatedJobs"]:
        job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x", **rj["template"]["metadata"]},
               "spec": rj["template"]["spec"]}
        kubernetes_validate([job], tmp_path)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("extra", [(), ("--queue", "team-a", "--priority-class", "batch-high", "--deadline", "3600")],
                         ids=["job", "job+kueue"])
def test_job_overlays_render_and_validate_against_kubernetes_schemas(overlay, extra, tmp_path):
    objects = render(overlay, extra=extra)
    assert sorted(o["kind"] for o in objects) == ["ConfigMap", "ConfigMap", "Job", "Namespace", "Service",
                                                  "ServiceAccount"]
    kubernetes_validate(objects, tmp_path)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("extra", [(), ("--queue", "team-a", "--exclusive-topology", "cloud.google.com/gke-nodepool")],
                         ids=["jobset", "jobset+kueue"])
def test_jobset_overlays_validate_against_the_jobset_crd(overlay, extra, tmp_path):
    objects = render(overlay, extra=("--jobset", *extra))
    assert not by_kind(objects, "Job")
    validate_jobset(one(objects, "JobSet"), tmp_path)
    kubernetes_validate([o for o in objects if o["kind"] != "JobSet"], tmp_path)


def test_the_jobset_schema_check_can_fail(tmp_path):
    import jsonschema

    js = one(render("cpu-small", extra=("--jobset",)), "JobSet")
    bad = copy.deepcopy(js)
    bad["spec"]["failurePolicy"]["maxRestart"] = 3  # a typo the API server would silently drop
    with pytest.raises(jsonschema.ValidationError, match="maxRestart"):
        validate_jobset(bad, tmp_path)


@pytest.mark.parametrize("overlay,workers,gpus", [("gpu", 4, 1), ("cpu-small", 2, 0)])
def test_fields_that_must_agree(overlay, workers, gpus):
    objects = render(overlay, run="r7", job_dir="gs://b/runs")
    job, svc = one(objects, "Job"), one(objects, "Service")
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert job["metadata"]["name"] == "seqscale-train-r7"
    maps = {o["metadata"]["name"]: o for o in by_kind(objects, "ConfigMap")}
    labels = {**spec["template"]["metadata"]["labels"], "batch.kubernetes.io/job-name": job["metadata"]["name"]}
    env = kubelet_env(c, labels, {"batch.kubernetes.io/job-completion-index": "1"}, maps)
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == workers == int(env["SEQSCALE_NUM_WORKERS"])
    assert spec["backoffLimit"] == 3 * workers
    assert svc["spec"]["clusterIP"] == "None" and svc["spec"]["publishNotReadyAddresses"] is True
    assert all(spec["template"]["metadata"]["labels"].get(k) == v for k, v in svc["spec"]["selector"].items())
    # an Indexed Job's pod hostname is <job name>-<index>, its subdomain the Service: the address
    # the trainer builds for worker i must be that DNS name at the Service's port
    port = svc["spec"]["ports"][0]["port"]
    assert pod["subdomain"] == svc["metadata"]["name"] == env["SEQSCALE_SUBDOMAIN"]
    assert env["SEQSCALE_HOST_PATTERN"].format(index=3) == f"seqscale-train-r7-3.{svc['metadata']['name']}:{port}"
    assert c["ports"][0]["containerPort"] == port
    assert env["JOB_COMPLETION_INDEX"] == "1"
    assert env["SEQSCALE_JOB_DIR"] == "gs://b/runs/r7" and env["SEQSCALE_DATA"] == "gs://b/data"
    assert env["PYTHONUNBUFFERED"] == "1"
    # every object of the run carries the run label; pods too (kubectl logs -l seqscale.dev/run=r7)
    assert all(o["metadata"]["labels"]["seqscale.dev/run"] == "r7" for o in objects
               if o["kind"] in ("Job", "ConfigMap"))
    assert spec["template"]["metadata"]["labels"]["seqscale.dev/run"] == "r7"
    assert "seqscale.dev/run" not in svc["metadata"].get("labels", {})  # shared by all runs
    ns = one(objects, "Namespace")["metadata"]["name"]
    assert all(o["metadata"]["namespace"] == ns for o in objects if o["kind"] != "Namespace")
    # lifecycle
    assert spec["ttlSecondsAfterFinished"] > 0 and spec["activeDeadlineSeconds"] > 0
    assert spec["template"]["metadata"]["annotations"]["cluster-autoscaler.kubernetes.io/safe-to-evict"] == "false"
    assert pod["restartPolicy"] == "Never"
    # security
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert pod["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    assert "secret" not in json.dumps(job).lower()
    # resources and image
    assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
    assert c["image"] == "registry.example.com/seqscale-trainer:0.1.0"
    assert c["command"] == ["python", "-m", "training"]
    dshm = [v for v in pod["volumes"] if v["name"] == "dshm"][0]
    assert dshm["emptyDir"]["medium"] == "Memory"
    if gpus:
        assert c["resources"]["limits"]["nvidia.com/gpu"] == gpus
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu" and pod["nodeSelector"]
    else:
        assert "nvidia.com/gpu" not in json.dumps(c["resources"])


# Exit codes of training/__main__.py and what Kubernetes does with them (README "Exit codes").
EXIT_ACTIONS = {2: "FailJob", 3: "FailJob", 4: "Ignore"}


def test_exit_codes_map_to_the_job_failure_policy():
    from training.__main__ import EXIT_CONFIG, EXIT_FAILED, EXIT_GUARD, EXIT_OK, EXIT_PEER_LOST

    assert (EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_GUARD, EXIT_PEER_LOST) == (0, 1, 2, 3, 4)
    for overlay in OVERLAYS:
        rules = one(render(overlay), "Job")["spec"]["podFailurePolicy"]["rules"]
        assert rules[0]["action"] == "Ignore" and rules[0]["onPodConditions"][0]["type"] == "DisruptionTarget"
        by_code = {code: r["action"] for r in rules if "onExitCodes" in r for code in r["onExitCodes"]["values"]}
        assert by_code == EXIT_ACTIONS  # 1 (unexpected) and signals: retried within backoffLimit
    with open(ROOT / "docs" / "deploy.md", encoding="utf-8") as f:  # the table the README points to
        table = f.read()
    for code, action in EXIT_ACTIONS.items():
        assert re.search(rf"^\| {code} \|.*\| {action}", table, re.M), f"deploy.md exit-code table: {code} {action}"


def test_jobset_restarts_all_workers_but_fails_at_once_on_config_data_or_guard():
    objects = render("gpu", run="r8", extra=("--jobset",))
    js = one(objects, "JobSet")
    fp = js["spec"]["failurePolicy"]
    assert fp["restartStrategy"] == "Recreate" and fp["maxRestarts"] == 3
    assert fp["rules"] == [{"name": "configDataOrLossGuard", "action": "FailJobSet",
                            "onJobFailureReasons": ["PodFailurePolicy"]}]
    (rj,) = js["spec"]["replicatedJobs"]
    job = rj["template"]["spec"]
    assert job["backoffLimit"] == 0  # any other failure ends the Job: JobSet recreates every worker
    by_code = {code: r["action"] for r in job["podFailurePolicy"]["rules"] if "onExitCodes" in r
               for code in r["onExitCodes"]["values"]}
    assert by_code == EXIT_ACTIONS
    assert js["spec"]["network"] == {"enableDNSHostnames": True, "publishNotReadyAddresses": True}
    assert js["spec"]["ttlSecondsAfterFinished"] > 0
    pod = job["template"]["spec"]
    assert "subdomain" not in pod  # JobSet sets it to its own headless Service, named after the JobSet
    (c,) = pod["containers"]
    # the child Job is <jobset>-<replicated job>-<job index>; its pods' hostnames <child job>-<index>
    maps = {o["metadata"]["name"]: o for o in by_kind(objects, "ConfigMap")}
    env = kubelet_env(c, {"batch.kubernetes.io/job-name": f"{js['metadata']['name']}-worker-0"},
                      {"batch.kubernetes.io/job-completion-index": "0"}, maps)
    assert env["SEQSCALE_HOST_PATTERN"].format(index=2) == "seqscale-train-r8-worker-0-2.seqscale-train-r8:2222"


@pytest.mark.parametrize("jobset", [False, True])
def test_kueue_queue_suspends_the_run_until_admitted(jobset):
    objects = render("gpu", extra=("--queue", "team-a", *(("--jobset",) if jobset else ())))
    run = one(objects, "JobSet" if jobset else "Job")
    assert run["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
    assert run["spec"]["suspend"] is True
    plain = one(render("gpu", extra=("--jobset",) if jobset else ()), "JobSet" if jobset else "Job")
    assert "suspend" not in plain["spec"] and "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]


def test_runs_coexist_and_share_only_namespace_service_and_account():
    a, b = render("cpu-small", run="a1"), render("cpu-small", run="b2")
    names = lambda objs, kinds: {(o["kind"], o["metadata"]["name"]) for o in objs if o["kind"] in kinds}  # noqa: E731
    run_kinds, shared_kinds = ("Job", "ConfigMap"), ("Namespace", "Service", "ServiceAccount")
    assert not names(a, run_kinds) & names(b, run_kinds)
    assert [o for o in a if o["kind"] in shared_kinds] == [o for o in b if o["kind"] in shared_kinds]
    dirs = [config_maps(x)["seqscale-paths"]["data"]["job-dir"] for x in (a, b)]
    assert dirs == ["gs://b/runs/a1", "gs://b/runs/b2"]
    only_run = render("cpu-small", run="a1", extra=("--part", "run"))  # what k8s-delete removes
    assert {o["kind"] for o in only_run} == {"Job", "ConfigMap"}
    default = render_text("cpu-small", run="")
    assert re.search(r"run (\d{8}-\d{6}), job dir gs://b/runs/\1", default.stderr), default.stderr


def test_workload_identity_account_is_a_parameter():
    sa = one(render("gpu", extra=("--gcp-service-account", "trainer@my-proj.iam.gserviceaccount.com")),
             "ServiceAccount")
    assert sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"] == "trainer@my-proj.iam.gserviceaccount.com"
    assert "annotations" not in one(render("gpu"), "ServiceAccount")["metadata"]


def test_image_with_registry_port_tag_or_digest():
    digest = "sha256:" + "ab" * 32
    for image, expected in [("localhost:5000/team/seqscale:2.0.1", "localhost:5000/team/seqscale:2.0.1"),
                            (f"registry.example.com/seqscale@{digest}", f"registry.example.com/seqscale@{digest}")]:
        (c,) = one(render("gpu", image=image), "Job")["spec"]["template"]["spec"]["containers"]
        assert c["image"] == expected


@pytest.mark.parametrize("kw,message", [
    ({"image": "registry.example.com/x:latest"}, ":latest is refused"),
    ({"image": "localhost:5000/seqscale"}, "has no tag"),
    ({"image": ""}, "IMAGE is required"),
    ({"image": "r/x@sha256:123"}, "a digest must look like"),
    ({"data": ""}, "DATA is required"),
    ({"job_dir": ""}, "JOB_DIR is required"),
    ({"data": "demo-out/data"}, "is a path on this machine, which the pods cannot see"),
    ({"run": "Run_1"}, "RUN 'Run_1'"),
    ({"extra": ("--gcp-service-account", "YOUR_PROJECT")}, "give NAME@PROJECT.iam.gserviceaccount.com"),
    ({"extra": ("--exclusive-topology", "x")}, "needs --jobset"),
    ({"extra": ("--deadline", "5")}, "DEADLINE 5"),
])
def test_render_refuses_what_cannot_work(kw, message):
    proc = render_text("gpu", **kw)
    assert proc.returncode == 2 and message in proc.stderr and not proc.stdout, proc.stderr


def test_make_k8s_render_refuses_the_local_defaults():
    proc = subprocess.run(["make", "-s", "k8s-render", "OVERLAY=cpu-small", "IMAGE=r/x:1"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "DATA 'demo-out/data' is a path on this machine" in proc.stderr


# ------------------------------------------------------------------ pods as local processes


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from tests.training.conftest import build_dataset

    return build_dataset(tmp_path_factory.mktemp("k8sds"))


def rendered_pods(dataset, tmp_path, train_overrides):
    objects = render("cpu-small", data=str(dataset), job_dir=str(tmp_path / "runs"), run="t1")
    return pod_commands(objects, tmp_path, train_overrides), tmp_path / "runs" / "t1"


@pytest.mark.slow
def test_rendered_pods_train_and_the_chief_exports(tiny_dataset, tmp_path):
    cmds, job_dir = rendered_pods(tiny_dataset, tmp_path, {"train": {"epochs": 2, "max_steps_per_epoch": 10, "members": 1},
                                                          "model": {"units": [16]}})
    assert [env["JOB_COMPLETION_INDEX"] for _, env in cmds] == ["0", "1"]
    codes, outs = wait_all(start_pods(cmds, free_base_port(2)), timeout=300)
    assert codes == [0, 0], "\n".join(o[-3000:] for o in outs)
    assert "worker 0 of 2 (chief)" in outs[0] and "worker 1 of 2 (worker)" in outs[1]
    assert (job_dir / "export" / "saved_model.pb").exists() and (job_dir / "eval.json").exists()


@pytest.mark.slow
def test_lost_pod_gang_restart_resumes(tiny_dataset, tmp_path):
    cmds, job_dir = rendered_pods(tiny_dataset, tmp_path, {"train": {"epochs": 4, "max_steps_per_epoch": 60,
                                                                    "patience": 0, "members": 1},
                                                          "model": {"units": [16]}, "runtime": {"evaluate": False}})
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
