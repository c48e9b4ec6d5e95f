"""Write docs/flags.md from the three argument parsers (`python scripts/flag_reference.py`).

tests/test_docs.py regenerates it and fails when the file is stale, so the reference
cannot drift from the flags and their defaults.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "docs", "flags.md")


def render() -> str:
    sys.path.insert(0, ROOT)
    from contract.flags import reference
    from preprocessing.options import build_parser as preprocess_parser
    from training.config import build_parser as train_parser
    from training.doctor import build_parser as doctor_parser

    head = ("# Flag reference\n\nGenerated from the argument parsers by `python scripts/flag_reference.py`; "
            "do not edit by hand (a test checks it is current). Defaults come from the config dataclasses "
            "(`preprocessing/options.py` `JobConfig`, `training/config.py`). A preprocessing spec file and a "
            "training `--config` file take the same names (dashes or underscores); flags win over files. "
            "seqscale-preprocess passes every flag it does not know to Beam's `PipelineOptions`.\n\n")
    return head + "\n".join(reference(p()) for p in (preprocess_parser, train_parser, doctor_parser))


if __name__ == "__main__":
    with open(TARGET, "w", encoding="utf-8") as f:
        f.write(render())
    print(f"wrote {TARGET}")
