"""The Dataflow Flex Template: its parameters come from the job's own parser, and the
launcher's `--name=value` arguments are turned back into seqscale's flags.

Why a translation: template parameter names are identifiers (`look_back`), and the launcher
passes every parameter as `--name=value` (booleans as `=true`/`=false`), while the CLI spells
flags `--look-back` and switches without a value. Beam's own options (`--runner`,
`--sdk_container_image`, ...) pass through unchanged. `dataflow/metadata.json` is generated
from `build_parser()` by `make docs` (tests/test_docs.py fails when it is stale), so a new
flag cannot be missing from the template.
"""

from __future__ import annotations

import argparse
import json

# parameters that name storage locations: the Dataflow console offers a picker for them
PARAM_TYPES = {"input": "GCS_READ_FILE", "output": "GCS_WRITE_FOLDER", "spec": "GCS_READ_FILE"}
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no", "")


def _options(parser: argparse.ArgumentParser):
    for action in parser._actions:
        long = [o for o in action.option_strings if o.startswith("--")]
        if long and action.dest != "help":
            yield long[0], action


def parameter_name(flag: str) -> str:
    return flag[2:].replace("-", "_")


def metadata(parser: argparse.ArgumentParser) -> dict:
    """metadata.json of the Flex Template: one optional parameter per flag, with its help."""
    params = []
    for flag, action in _options(parser):
        name = parameter_name(flag)
        help_text = action.help or ""
        if action.choices:
            help_text += f" (one of: {', '.join(map(str, action.choices))})"
        if action.nargs == 0:
            help_text += " (true or false)"
        params.append({"name": name, "label": flag, "helpText": help_text, "isOptional": True,
                       **({"paramType": PARAM_TYPES[name]} if name in PARAM_TYPES else {})})
    return {
        "name": "seqscale-preprocess",
        "description": (parser.description or "").split(". Every other flag")[0] + ". Give input/output "
                       "and the columns as parameters, or all of it as a spec file (spec=gs://.../spec.yaml).",
        "parameters": params,
    }


def metadata_json(parser: argparse.ArgumentParser) -> str:
    return json.dumps(metadata(parser), indent=2) + "\n"


def to_cli_args(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """`--look_back=48` -> `--look-back=48`, `--target_sequence=true` -> `--target-sequence`;
    anything that is not one of seqscale's parameters (Beam's options) is kept as it is."""
    flags = {parameter_name(flag): (flag, action) for flag, action in _options(parser)}
    out = []
    for arg in argv:
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name not in flags:
            out.append(arg)
            continue
        flag, action = flags[name]
        if action.nargs == 0 and eq:
            if value.lower() not in TRUE + FALSE:
                raise SystemExit(f"seqscale-preprocess: error: parameter {name}={value!r}: use true or false")
            if value.lower() in TRUE:
                out.append(flag)
        else:
            out.append(f"{flag}{eq}{value}")
    return out


def main(argv: list[str] | None = None) -> int:
    """The Flex Template's entry point (dataflow/main.py)."""
    import sys

    from preprocessing.__main__ import main as run_job
    from preprocessing.options import build_parser

    return run_job(to_cli_args(list(sys.argv[1:] if argv is None else argv), build_parser()))
