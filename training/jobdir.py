"""The job dir's one rule, in code: one writer per file, whole files only.

Who writes what (docs/design.md, "The job dir under concurrency"): the chief writes every
shared file; each other worker writes only below its own scratch path
(cluster.write_path). A writer replaces a file atomically: on local disk a temporary name
unique to the writer (host, pid, random) then a rename; on gs:// one object upload (GCS
makes an object visible whole when its upload finishes). Non-writers never read mid-run
what the chief writes: every worker computes the same state from all-reduced metrics, so
they keep it in memory; they read the chief's files only when a (re)started run begins,
before the first collective of the epoch, so the chief cannot be writing then.

Why reads go through `read_bytes`: `tf.io.gfile.GFile.read()` opens the file, then takes
the length to read from `stat(path)`. If the file is replaced by a rename in between, it
reads the *old* file with the *new* length: a torn read (the JSONDecodeError of issue #14),
even though the rename itself is atomic. `read_bytes` reads to end of file from one open
handle instead.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import socket
import uuid

from contract.logs import import_tensorflow
from training.errors import JobDirError

tf = import_tensorflow()  # without its C++ start-up lines (contract/logs.py)


def is_object_store(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def write_atomic(path: str, data: bytes | str) -> None:
    """Replace `path` with `data` as one whole file (local: unique temp + rename; gs://: one upload)."""
    data = data.encode() if isinstance(data, str) else data
    try:
        tf.io.gfile.makedirs(posixpath.dirname(path))
        if is_object_store(path):
            with tf.io.gfile.GFile(path, "wb") as f:
                f.write(data)
            return
        tmp = f"{path}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        with tf.io.gfile.GFile(tmp, "wb") as f:
            f.write(data)
        tf.io.gfile.rename(tmp, path, overwrite=True)
    except (tf.errors.OpError, OSError) as e:
        raise JobDirError(f"cannot write {path} ({e}); check the job dir's permissions and free space") from e


def read_bytes(path: str) -> bytes:
    """The whole file, read to EOF from one handle (never sized by a separate stat)."""
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            chunks = []
            while chunk := f.read(1 << 20):
                chunks.append(chunk)
        return b"".join(chunks)
    except (tf.errors.OpError, OSError) as e:
        raise JobDirError(f"cannot read {path} ({e})") from e


def exists(path: str) -> bool:
    return tf.io.gfile.exists(path)


def read_json(path: str, missing=None):
    """A whole JSON file (read_bytes), `missing` when there is none; bad JSON names the file."""
    if not exists(path):
        return missing
    try:
        return json.loads(read_bytes(path))
    except json.JSONDecodeError as e:
        raise JobDirError(f"{path} is not valid JSON ({e}); delete it (or its directory) to start that state "
                          "over") from e


def preflight(job_dir: str, cluster, min_free_mb: int) -> None:
    """Fail before training when the job dir cannot be written or its disk is (nearly) full.

    Each worker probes its own write path (a file only it writes), as the rule requires.
    """
    from training.cluster import write_path
    from training.config import ConfigError

    target = write_path(job_dir, cluster)
    probe = posixpath.join(target, f".seqscale-probe-{cluster.index}")
    try:
        tf.io.gfile.makedirs(target)
        with tf.io.gfile.GFile(probe, "w") as f:
            f.write("ok")
        tf.io.gfile.remove(probe)
    except (tf.errors.OpError, OSError) as e:
        raise ConfigError(f"cannot write to the job dir {target} ({e}); choose a writable --job-dir") from e
    if "://" not in job_dir:
        free_mb = shutil.disk_usage(target).free / 2**20
        if free_mb < min_free_mb:
            raise ConfigError(
                f"the job dir {target} has {free_mb:.0f} MB free, less than the {min_free_mb} MB needed for checkpoints, "
                "backups and the export; free space or choose another --job-dir (--min-free-disk-mb sets the limit)")
