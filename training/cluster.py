"""Who am I in the cluster: TF_CONFIG from the environment, pure and CPU-testable.

Three ways to run, in order of precedence:
1. TF_CONFIG is set (a launcher or operator wrote it): use it as is.
2. JOB_COMPLETION_INDEX is set (a Kubernetes Indexed Job): build TF_CONFIG from the index,
   the worker count and a host pattern such as `seqscale-train-{index}.seqscale-workers:2222`
   (the headless Service's stable DNS names); `{port}` expands to base_port + index
   (SEQSCALE_BASE_PORT or --base-port), which is how N local processes on 127.0.0.1
   simulating pods get distinct ports.
3. Neither: a single process (MirroredStrategy over local GPUs, or the default strategy).

`make_strategy` turns the Cluster into a tf.distribute strategy; TensorFlow is imported
only there, so everything else here stays pure.
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass

from training.watchdog import Watchdog


class ClusterError(ValueError):
    """The cluster description is inconsistent."""


@dataclass(frozen=True)
class Cluster:
    """This process's place in the job."""

    workers: tuple[str, ...]  # host:port of every worker; empty for single-process
    index: int

    @property
    def num_workers(self) -> int:
        return max(1, len(self.workers))

    @property
    def is_chief(self) -> bool:
        """Worker 0 is the chief (no separate chief task, as in the TF multi-worker tutorial)."""
        return self.index == 0

    @property
    def multi_worker(self) -> bool:
        return len(self.workers) > 0

    def tf_config(self) -> dict:
        return {"cluster": {"worker": list(self.workers)}, "task": {"type": "worker", "index": self.index}}


def worker_hosts(pattern: str, num_workers: int, *, base_port: int = 2222) -> tuple[str, ...]:
    """Expand a host pattern for every index; each host must end in :port."""
    if num_workers < 1:
        raise ClusterError(f"worker count must be >= 1, got {num_workers}")
    if "{index}" not in pattern and "{port}" not in pattern and num_workers > 1:
        raise ClusterError(f"host pattern {pattern!r} needs {{index}} or {{port}} to tell {num_workers} workers apart")
    hosts = tuple(pattern.format(index=i, port=base_port + i) for i in range(num_workers))
    for h in hosts:
        host, _, port = h.rpartition(":")
        if not host or not port.isdigit():
            raise ClusterError(f"worker address {h!r} from pattern {pattern!r} must look like host:port")
    if len(set(hosts)) != len(hosts):
        raise ClusterError(f"host pattern {pattern!r} gives duplicate addresses {hosts}")
    return hosts


def from_tf_config(text: str) -> Cluster:
    try:
        cfg = json.loads(text)
        workers = tuple(cfg["cluster"]["worker"])
        task = cfg["task"]
    except (ValueError, KeyError, TypeError) as e:
        raise ClusterError(f"TF_CONFIG is not valid ({e}): expected {{'cluster': {{'worker': [...]}}, 'task': {{...}}}}") from e
    if set(cfg["cluster"]) - {"worker"}:
        raise ClusterError(f"TF_CONFIG has job types {sorted(cfg['cluster'])}; seqscale runs worker tasks only")
    if task.get("type") != "worker" or not 0 <= int(task.get("index", -1)) < len(workers):
        raise ClusterError(f"TF_CONFIG task {task} is not one of the {len(workers)} workers")
    return Cluster(workers=workers, index=int(task["index"]))


def resolve(env: dict[str, str] | None = None, *, num_workers: int | None = None, host_pattern: str | None = None,
            base_port: int = 2222) -> Cluster:
    """The cluster of this process, from TF_CONFIG or JOB_COMPLETION_INDEX (see module doc)."""
    env = dict(os.environ if env is None else env)
    base_port = int(env.get("SEQSCALE_BASE_PORT", base_port))
    if env.get("TF_CONFIG"):
        return from_tf_config(env["TF_CONFIG"])
    if "JOB_COMPLETION_INDEX" in env:
        count = num_workers or int(env.get("SEQSCALE_NUM_WORKERS", "0") or 0)
        pattern = host_pattern or env.get("SEQSCALE_HOST_PATTERN")
        if not count or not pattern:
            raise ClusterError(
                "JOB_COMPLETION_INDEX is set but the worker count or host pattern is not: pass --num-workers and "
                "--host-pattern (or set SEQSCALE_NUM_WORKERS and SEQSCALE_HOST_PATTERN)"
            )
        index = int(env["JOB_COMPLETION_INDEX"])
        if not 0 <= index < count:
            raise ClusterError(f"JOB_COMPLETION_INDEX {index} is outside 0..{count - 1}")
        if count == 1:
            return Cluster(workers=(), index=0)
        return Cluster(workers=worker_hosts(pattern, count, base_port=base_port), index=index)
    return Cluster(workers=(), index=0)


def write_path(job_dir: str, cluster: Cluster, *parts: str) -> str:
    """Where this worker writes: the job dir for the chief, a scratch dir for the others.

    Non-chief workers must still write (some Keras callbacks save on every worker), but
    to paths that are removed afterwards, never over the chief's files.
    """
    base = job_dir if cluster.is_chief else posixpath.join(job_dir, "scratch", f"worker-{cluster.index}")
    return posixpath.join(base, *parts) if parts else base


def peer_lost(exc: BaseException) -> bool:
    """Whether a failure is MultiWorkerMirroredStrategy noticing that a peer went away.

    The surviving workers' collectives fail with UnavailableError ("The following tasks
    are unhealthy (stopped sending heartbeats)") or an aborted/cancelled collective; that
    is not their own fault and gets its own exit code.
    """
    text = str(exc)
    return (type(exc).__name__ in ("UnavailableError", "AbortedError")
            or "stopped sending heartbeats" in text or "Collective ops is aborted" in text
            or "tasks are unhealthy" in text)


def startup_message(cluster: Cluster, seconds: int) -> str:
    peers = ", ".join(w for i, w in enumerate(cluster.workers) if i != cluster.index)
    return (f"seqscale-train: error: worker {cluster.index} ({cluster.workers[cluster.index]}) could not reach its "
            f"peers ({peers}) within {seconds} s. Check that all {cluster.num_workers} workers started, that "
            "TF_CONFIG / --host-pattern and ports are right, and that the workers can reach each other "
            "(--startup-timeout sets this limit)")


def make_strategy(cluster: Cluster, startup_timeout: int = 300):
    """MWMS for a cluster (NCCL on GPUs, RING on CPU), Mirrored over >1 local GPU, else default.

    For a cluster, one all-reduce proves every worker is up before anything else runs;
    a watchdog bounds the wait.
    """
    from training import import_tensorflow

    tf = import_tensorflow()
    if cluster.multi_worker:
        os.environ["TF_CONFIG"] = json.dumps(cluster.tf_config())
        # a watchdog process: the strategy blocks in C++ without the GIL while peers are missing
        met = Watchdog(startup_timeout, startup_message(cluster, startup_timeout))
        gpus = tf.config.list_physical_devices("GPU")
        impl = tf.distribute.experimental.CommunicationImplementation
        options = tf.distribute.experimental.CommunicationOptions(implementation=impl.NCCL if gpus else impl.RING)
        try:
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        except tf.errors.UnknownError as e:
            met.stop()
            if "gRPC server" in str(e):
                raise ClusterError(
                    f"worker {cluster.index} cannot listen on {cluster.workers[cluster.index]} ({e.message}): the port "
                    "is in use or the address is not this machine's; free the port or fix TF_CONFIG/--host-pattern"
                ) from e
            raise
        one = strategy.run(lambda: tf.constant(1.0))
        strategy.reduce(tf.distribute.ReduceOp.SUM, one, axis=None)
        met.stop()
        return strategy
    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
