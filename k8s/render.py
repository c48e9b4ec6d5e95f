"""Render one training run's manifests (`make k8s-render`, `python k8s/render.py --help`).

An overlay (k8s/overlays/NAME) says how big the run is; this script says which run it is:
its name (RUN, default a UTC timestamp, suffixed to the Job and its ConfigMaps and to the job
dir, so runs coexist and a rerun with the same RUN resumes from its backup), the image (a tag
or digest is required), where the data is and where the run writes (both required, and never a
relative path a pod could not see), and the cluster's own choices: the Google service account
for Workload Identity, a Kueue queue, a priority class, a deadline, and JobSet instead of Job.

Kustomize does the composition (real `kubectl kustomize`); the few edits kustomize cannot
express (a Job turned into a JobSet, Kueue's suspend) are pure functions on the rendered
objects, tested in tests/k8s. Output: YAML on stdout, the run's name and job dir on stderr.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.abspath(__file__))
IMAGE_PLACEHOLDER = "seqscale-trainer"  # the container image name in k8s/base/job.yaml
RUN_LABEL = "seqscale.dev/run"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOBSET_API = "jobset.x-k8s.io/v1alpha2"
JOBSET_MAX_RESTARTS = 3  # gang restarts, as the Job's backoffLimit of 3 x workers
RUN_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,28}[a-z0-9])?$")
REMOTE = re.compile(r"^[a-z][a-z0-9+.-]*://")


class RenderError(ValueError):
    """A parameter that would render manifests that cannot work; the message says the fix."""


def parse_image(image: str) -> dict:
    """name:tag or name@sha256:digest -> kustomize `images:` fields; a tag or digest is required.

    The tag is what follows the last ':' of the last path component, so a registry port
    (localhost:5000/seqscale) is not mistaken for one.
    """
    if not image:
        raise RenderError("IMAGE is required: the trainer image you pushed, e.g. "
                          "europe-docker.pkg.dev/PROJECT/REPO/seqscale-trainer:0.1.0-gpu (make trainer-image)")
    if "@" in image:
        name, _, digest = image.partition("@")
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise RenderError(f"IMAGE {image!r}: a digest must look like @sha256:<64 hex digits>")
        return {"newName": name, "digest": digest}
    repo, _, last = image.rpartition("/")
    name, sep, tag = last.partition(":")
    if not sep or not tag:
        raise RenderError(f"IMAGE {image!r} has no tag: give name:tag or name@sha256:digest "
                          "(an untagged image means :latest, which changes under a running job)")
    if tag == "latest":
        raise RenderError(f"IMAGE {image!r}: :latest is refused; give the pinned tag or digest you pushed")
    return {"newName": f"{repo}/{name}" if repo else name, "newTag": tag}


def check_path(flag: str, path: str) -> str:
    """Pods see remote storage (gs://...) or an absolute path on a mounted volume, never a relative path."""
    if not path:
        raise RenderError(f"{flag} is required: the gs:// path the pods {'read' if flag == 'DATA' else 'write'}")
    if not (REMOTE.match(path) or path.startswith("/")):
        raise RenderError(f"{flag} {path!r} is a path on this machine, which the pods cannot see: give gs://... "
                          "(or an absolute path on a volume you mount into the pods)")
    return path.rstrip("/")


def check_run(run: str) -> str:
    if not RUN_PATTERN.match(run):
        raise RenderError(f"RUN {run!r}: use 1-30 lowercase letters, digits and '-' (it becomes part of "
                          "Kubernetes object names and pod hostnames)")
    return run


def default_run(now: datetime.datetime | None = None) -> str:
    return (now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%d-%H%M%S")


def overlay_namespace(overlay: str) -> str:
    with open(os.path.join(ROOT, "overlays", overlay, "kustomization.yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f).get("namespace", "default")


def run_kustomization(overlay: str, run: str, image: dict, data: str, job_dir: str) -> dict:
    """The run's part: the overlay named for this run, with its image and paths."""
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [f"../overlays/{overlay}"],
        "nameSuffix": f"-{run}",
        "labels": [{"pairs": {RUN_LABEL: run}, "includeTemplates": True}],
        "images": [{"name": IMAGE_PLACEHOLDER, **image}],
        "configMapGenerator": [{"name": "seqscale-paths", "behavior": "merge",
                                "literals": [f"data={data}", f"job-dir={job_dir}"]}],
    }


def shared_kustomization(namespace: str) -> dict:
    """What every run in the namespace shares (k8s/shared), in the overlay's namespace."""
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": namespace, "resources": ["../shared"]}


def kustomize(kustomization: dict) -> list[dict]:
    """Real `kubectl kustomize` on a kustomization written next to the overlays (paths are relative)."""
    if shutil.which("kubectl") is None:
        raise RenderError("kubectl is not installed: it renders the kustomize overlays")
    tmp = tempfile.mkdtemp(prefix=".render-", dir=ROOT)
    try:
        with open(os.path.join(tmp, "kustomization.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(kustomization, f, sort_keys=False)
        proc = subprocess.run(["kubectl", "kustomize", tmp], capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode != 0:
        raise RenderError(f"kubectl kustomize failed: {proc.stderr.strip()}")
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def env_entry(container: dict, name: str) -> dict:
    return next(e for e in container["env"] if e["name"] == name)


def with_service_account(objects: list[dict], gcp_service_account: str | None) -> list[dict]:
    """Workload Identity: annotate the Kubernetes service account with the Google one."""
    out = copy.deepcopy(objects)
    if gcp_service_account:
        if not re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]@[-a-z0-9.]+\.iam\.gserviceaccount\.com",
                            gcp_service_account):
            raise RenderError(f"GCP_SA {gcp_service_account!r}: give NAME@PROJECT.iam.gserviceaccount.com")
        for o in out:
            if o["kind"] == "ServiceAccount":
                o["metadata"].setdefault("annotations", {})["iam.gke.io/gcp-service-account"] = gcp_service_account
    return out


def with_scheduling(objects: list[dict], *, queue: str | None, priority_class: str | None,
                    deadline: int | None) -> list[dict]:
    """Kueue (queue label + suspend: admitted all at once or not at all), priority, deadline."""
    if deadline is not None and deadline < 60:
        raise RenderError(f"DEADLINE {deadline}: give the longest a run may take, in seconds (>= 60)")
    out = copy.deepcopy(objects)
    for o in out:
        if o["kind"] != "Job":
            continue
        if queue:
            o["metadata"].setdefault("labels", {})[KUEUE_QUEUE_LABEL] = queue
            o["spec"]["suspend"] = True  # Kueue unsuspends it when quota for every worker is free
        if priority_class:
            o["spec"]["template"]["spec"]["priorityClassName"] = priority_class
        if deadline is not None:
            o["spec"]["activeDeadlineSeconds"] = deadline
    return out


def to_jobset(job: dict, *, exclusive_topology: str | None = None) -> dict:
    """The same training as a JobSet: one replicated Job of N workers, restarted all together.

    JobSet gives what the plain Job approximates: on any worker's failure it recreates every
    worker (failurePolicy, up to maxRestarts), it creates the headless Service named after
    the JobSet, and it can place a run's pods alone in a topology domain. The Job inside keeps
    the pod failure policy, with backoffLimit 0: a failure that is not ignored fails the Job,
    and JobSet's rules decide: exit 2/3 (PodFailurePolicy) fails the JobSet, anything else
    restarts all workers.
    """
    name = job["metadata"]["name"]
    spec = copy.deepcopy(job["spec"])
    pod = spec["template"]["spec"]
    pod.pop("subdomain", None)  # JobSet sets it to its Service (the JobSet's name)
    (container,) = [c for c in pod["containers"] if c["name"] == "trainer"]
    env_entry(container, "SEQSCALE_SUBDOMAIN")["value"] = name
    ttl = spec.pop("ttlSecondsAfterFinished", None)
    suspend = spec.pop("suspend", None)
    spec["backoffLimit"] = 0
    labels = dict(job["metadata"].get("labels", {}))
    queue = labels.get(KUEUE_QUEUE_LABEL)
    template_labels = {k: v for k, v in labels.items() if k != KUEUE_QUEUE_LABEL}
    annotations = {}
    if exclusive_topology:
        annotations["alpha.jobset.sigs.k8s.io/exclusive-topology"] = exclusive_topology
    js_spec = {
        "failurePolicy": {
            "maxRestarts": JOBSET_MAX_RESTARTS,
            "restartStrategy": "Recreate",
            "rules": [{"name": "configDataOrLossGuard", "action": "FailJobSet",
                       "onJobFailureReasons": ["PodFailurePolicy"]}],
        },
        "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
        "replicatedJobs": [{"name": "worker", "replicas": 1,
                            "template": {"metadata": {"labels": template_labels}, "spec": spec}}],
    }
    if ttl is not None:
        js_spec["ttlSecondsAfterFinished"] = ttl
    if suspend:
        js_spec["suspend"] = True
    metadata = {"name": name, "namespace": job["metadata"]["namespace"], "labels": labels}
    if annotations:
        metadata["annotations"] = annotations
    if queue:
        metadata["labels"][KUEUE_QUEUE_LABEL] = queue
    return {"apiVersion": JOBSET_API, "kind": "JobSet", "metadata": metadata, "spec": js_spec}


def render(args: argparse.Namespace) -> tuple[list[dict], str, str]:
    """(objects, run, job dir) for the parsed arguments."""
    if not os.path.isdir(os.path.join(ROOT, "overlays", args.overlay)):
        names = sorted(os.listdir(os.path.join(ROOT, "overlays")))
        raise RenderError(f"no overlay k8s/overlays/{args.overlay}; there are: {', '.join(names)}")
    image = parse_image(args.image)
    data = check_path("DATA", args.data)
    run = check_run(args.run or default_run())
    job_dir = f"{check_path('JOB_DIR', args.job_dir)}/{run}"
    objects = kustomize(run_kustomization(args.overlay, run, image, data, job_dir))
    objects = with_scheduling(objects, queue=args.queue, priority_class=args.priority_class, deadline=args.deadline)
    if args.jobset:
        objects = [to_jobset(o, exclusive_topology=args.exclusive_topology) if o["kind"] == "Job" else o
                   for o in objects]
    elif args.exclusive_topology:
        raise RenderError("--exclusive-topology needs --jobset (JobSet places the pods)")
    if args.part == "all":
        shared = kustomize(shared_kustomization(overlay_namespace(args.overlay)))
        objects = with_service_account(shared, args.gcp_service_account) + objects
    return objects, run, job_dir


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="k8s/render.py", description=__doc__.split("\n\n")[0],
                                allow_abbrev=False)
    p.add_argument("--overlay", required=True, help="k8s/overlays/NAME: gpu | cpu-small")
    p.add_argument("--image", default="", help="trainer image, name:tag or name@sha256:digest (required)")
    p.add_argument("--data", default="", help="dataset directory the pods read, gs://... (required)")
    p.add_argument("--job-dir", default="", help="parent of the run's job dir, gs://... (required); the run "
                                                  "writes to JOB_DIR/RUN")
    p.add_argument("--run", default="", help="run name (default: UTC timestamp); the same RUN resumes that run")
    p.add_argument("--gcp-service-account", default="", help="Workload Identity: NAME@PROJECT.iam.gserviceaccount.com")
    p.add_argument("--queue", default="", help="Kueue LocalQueue name: the run waits until all workers fit")
    p.add_argument("--priority-class", default="", help="PriorityClass of the worker pods")
    p.add_argument("--deadline", type=int, default=None, help="activeDeadlineSeconds (default 172800 = 2 days)")
    p.add_argument("--jobset", action="store_true", help="render a JobSet (needs the JobSet controller) instead of a Job")
    p.add_argument("--exclusive-topology", default="", help="with --jobset: node label whose domains a run "
                                                             "gets alone, e.g. cloud.google.com/gke-nodepool")
    p.add_argument("--part", choices=("all", "run"), default="all",
                   help="all: namespace, Service, service account and the run; run: only the run (what k8s-delete removes)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        objects, run, job_dir = render(args)
    except RenderError as e:
        print(f"k8s/render.py: error: {e}", file=sys.stderr)
        return 2
    print(f"k8s/render.py: run {run}, job dir {job_dir}", file=sys.stderr)
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
