"""A start-up watchdog that works while TensorFlow blocks in C++.

MultiWorkerMirroredStrategy's start-up blocks inside TensorFlow's runtime without
releasing the GIL when a peer never comes up, so a Python thread or signal handler in
the same process never gets to run. The watchdog is therefore a tiny child process: if
the parent does not call `stop()` within the limit, it prints the message and terminates
the parent (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import subprocess
import sys

_CHILD = r"""
import os, select, signal, sys, time
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ready, _, _ = select.select([sys.stdin], [], [], seconds)
if ready:
    sys.exit(0)  # the parent said stop (or exited: EOF)
sys.stderr.write(message + "\n")
sys.stderr.flush()
try:
    os.kill(parent, signal.SIGTERM)
    time.sleep(5)
    os.kill(parent, signal.SIGKILL)
except ProcessLookupError:
    pass
"""


class Watchdog:
    def __init__(self, seconds: float, message: str) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(os.getpid()), str(seconds), message],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        if self._proc.poll() is None:
            try:
                self._proc.stdin.write(b"stop\n")
                self._proc.stdin.close()
            except BrokenPipeError:
                pass
            self._proc.wait(timeout=10)
