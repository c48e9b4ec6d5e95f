"""`make train-local WORKERS=N`: N trainer processes on 127.0.0.1, the real multi-worker path.

Picks free ports, gives each process its TF_CONFIG, streams every worker's output with
a `[w<i>]` prefix, and fails fast: when one worker exits non-zero the others are
terminated and the launcher exits with that code (a lone MultiWorkerMirroredStrategy
worker would otherwise wait for its dead peer).

    python -m training.launch --workers 2 -- --data out/ --job-dir runs/exp1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def tf_configs(ports: list[int]) -> list[dict]:
    workers = [f"127.0.0.1:{p}" for p in ports]
    return [{"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}} for i in range(len(ports))]


def _pump(stream, prefix: str, out, errors: dict, index: int) -> None:
    for line in iter(stream.readline, ""):
        out.write(f"{prefix}{line}")
        out.flush()
        if line.startswith("seqscale-train:"):
            errors[index] = line.strip()  # the worker's own one-line reason, for the summary


def launch(workers: int, trainer_args: list[str], *, module: str = "training", env: dict | None = None,
           timeout: float | None = None, out=None) -> int:
    """Run `python -m <module> <trainer_args>` as `workers` processes; returns the job's exit code."""
    out = out or sys.stdout
    ports = free_ports(workers)
    procs = []
    threads = []
    errors: dict[int, str] = {}
    for i, cfg in enumerate(tf_configs(ports)):
        penv = {**os.environ, **(env or {}), "TF_CONFIG": json.dumps(cfg), "PYTHONUNBUFFERED": "1"}
        p = subprocess.Popen([sys.executable, "-m", module, *trainer_args], env=penv, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
        procs.append(p)
        th = threading.Thread(target=_pump, args=(p.stdout, f"[w{i}] ", out, errors, i), daemon=True)
        th.start()
        threads.append(th)
    deadline = time.time() + timeout if timeout else None
    code = 0
    try:
        while True:
            codes = [p.poll() for p in procs]
            failed = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
            if failed:
                i, code = failed[0]
                threads[i].join(timeout=5)  # read its last lines, with the reason
                reason = f" ({errors[i]})" if i in errors else ""
                out.write(f"[launch] worker {i} exited with {code}{reason}; stopping the others\n")
                break
            if all(c == 0 for c in codes):
                code = 0
                break
            if deadline and time.time() > deadline:
                out.write(f"[launch] timeout after {timeout} s; stopping all workers\n")
                code = 124
                break
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for th in threads:
            th.join(timeout=5)
    return code


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--timeout", type=float, default=None, help="stop everything after this many seconds")
    p.add_argument("trainer_args", nargs=argparse.REMAINDER, help="arguments after -- go to python -m training")
    args = p.parse_args(argv)
    rest = args.trainer_args[1:] if args.trainer_args[:1] == ["--"] else args.trainer_args
    return launch(args.workers, rest, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
