"""Write docs/flags.md from the five argument parsers and the Dataflow Flex Template's
dataflow/metadata.json from the job's parser (`python scripts/flag_reference.py`).

tests/test_docs.py regenerates both and fails when a file is stale, so neither the reference
nor the template's parameters can drift from the flags and their defaults.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.path.join(ROOT, "docs", "flags.md")
TEMPLATE_METADATA = os.path.join(ROOT, "dataflow", "metadata.json")


def render() -> str:
    sys.path.insert(0, ROOT)
    from contract.flags import reference
    from prediction.options import build_parser as predict_parser
    from preprocessing.options import build_parser as preprocess_parser
    from training.config import build_parser as train_parser
    from training.doctor import build_parser as doctor_parser
    from training.ensemble import build_parser as ensemble_parser

    head = ("# Flag reference\n\nGenerated from the argument parsers by `python scripts/flag_reference.py`; "
            "do not edit by hand (a test checks it is current). Defaults come from the config dataclasses "
            "(`preprocessing/options.py` `JobConfig`, `training/config.py`). A preprocessing spec file and a "
            "training `--config` file take the same names (dashes or underscores); flags win over files. "
            "seqscale-preprocess passes every flag it does not know to Beam's `PipelineOptions`.\n\n")
    return head + "\n".join(reference(p()) for p in (preprocess_parser, train_parser, doctor_parser, ensemble_parser,
                                                   predict_parser))


def render_template_metadata() -> str:
    sys.path.insert(0, ROOT)
    from preprocessing.flex_template import metadata_json
    from preprocessing.options import build_parser

    return metadata_json(build_parser())


if __name__ == "__main__":
    for path, text in ((TARGET, render()), (TEMPLATE_METADATA, render_template_metadata())):
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {path}")
