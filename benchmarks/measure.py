"""Run a command and report its wall time and the peak RSS of its whole process tree.

Peak RSS is sampled from /proc every 50 ms and summed over the process and all its
descendants (Beam's multi-process DirectRunner starts worker processes), so it is the
memory the machine actually needed, not one process's share.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass


@dataclass
class Measured:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str
    cpu_seconds: float = 0.0  # user + system time of the command and the children it waited for


def _children(pid: int) -> list[int]:
    out = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except OSError:
        return out
    for k in kids:
        out.append(k)
        out.extend(_children(k))
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str], *, env: dict | None = None, timeout: float = 1800) -> Measured:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, **(env or {})})
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            total = sum(_rss_kb(p) for p in [proc.pid, *_children(proc.pid)])
            peak = max(peak, total)
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        stop.set()
        t.join()
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Measured(seconds, peak / 1024, proc.returncode, out, cpu)


@contextlib.contextmanager
def scratch(work: str | None, prefix: str):
    """`work` as given (kept afterwards), or a temporary directory removed afterwards."""
    path = work or tempfile.mkdtemp(prefix=prefix)
    os.makedirs(path, exist_ok=True)
    try:
        yield path
    finally:
        if work is None:
            shutil.rmtree(path, ignore_errors=True)
