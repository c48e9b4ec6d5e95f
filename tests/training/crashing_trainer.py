"""A trainer whose chief dies like a SIGKILL between a state file's temp write and its rename.

Run as `python -m tests.training.crashing_trainer <trainer flags>` (through
training.launch.launch(module=...)); SEQSCALE_TEST_CRASH_AT=N makes worker 0 exit with 137
at its N-th rename of early_stopping.json, after the temporary file was written. Test
code only: production code has no hook for this.
"""

import json
import os
import sys

import training  # noqa: F401  (Keras 2)
from training import jobdir
from training.__main__ import main

_rename = jobdir.tf.io.gfile.rename
_calls = {"n": 0}


def _dying_rename(src, dst, overwrite=False):
    if dst.endswith("early_stopping.json"):
        _calls["n"] += 1
        if _calls["n"] == int(os.environ["SEQSCALE_TEST_CRASH_AT"]):
            assert os.path.exists(src)  # the temporary copy is complete, the rename never happens
            os._exit(137)
    return _rename(src, dst, overwrite=overwrite)


if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 0:
    jobdir.tf.io.gfile.rename = _dying_rename

if __name__ == "__main__":
    sys.exit(main())
