"""Stress helper (run as a process): one writer rewrites a StateStore, readers read it whole.

    python -m tests.training.stress_state write PATH_DIR SECONDS
    python -m tests.training.stress_state read PATH_DIR SECONDS  -> prints "reads torn"

The writer saves states of varying length through StateStore (as the chief does each
epoch); readers read the file with jobdir.read_bytes and parse it, as a resuming worker
does. A torn read is a JSON error or a state that is not one the writer wrote.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import training  # noqa: F401, E402
from training import jobdir  # noqa: E402
from training.state import StateStore  # noqa: E402


def state(i: int, epoch: int) -> dict:
    # lengths vary from epoch to epoch, like real floats do; "check" lets readers verify content
    return {"best": 0.1 if (i + epoch) % 2 else 0.123456789012345678, "wait": i % 7, "check": (i * 31 + epoch) % 97,
            "i": i}


def write(directory: str, seconds: float) -> None:
    store = StateStore(directory, "early_stopping", writer=True)
    end, i = time.time() + seconds, 0
    while time.time() < end:
        store.save(i, state(i, i))
        i += 1
    print(i, flush=True)


def read(directory: str, seconds: float) -> None:
    path = os.path.join(directory, "early_stopping.json")
    end, reads, torn = time.time() + seconds, 0, 0
    while time.time() < end:
        if not jobdir.exists(path):
            continue
        try:
            data = json.loads(jobdir.read_bytes(path))
            ok = all(s == state(s["i"], int(e)) for e, s in data.items()) and 1 <= len(data) <= StateStore.KEEP
        except json.JSONDecodeError:
            ok = False
        reads += 1
        torn += not ok
    print(reads, torn, flush=True)


if __name__ == "__main__":
    {"write": write, "read": read}[sys.argv[1]](sys.argv[2], float(sys.argv[3]))
