"""The Dataflow Flex Template: parameters as the launcher passes them reach the job as flags."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from preprocessing.flex_template import metadata, to_cli_args
from preprocessing.options import build_parser
from tests.helpers import multi_series, write_files

ROOT = Path(__file__).resolve().parents[2]


def test_launcher_arguments_become_seqscale_flags_and_beam_options_pass_through():
    argv = ["--look_back=48", "--target_sequence=true", "--full_shuffle=false", "--input=gs://b/raw/*.parquet",
            "--runner=DataflowRunner", "--sdk_container_image=r/seqscale-beam:0.1.0", "--temp_location=gs://b/t"]
    assert to_cli_args(argv, build_parser()) == [
        "--look-back=48", "--target-sequence", "--input=gs://b/raw/*.parquet",
        "--runner=DataflowRunner", "--sdk_container_image=r/seqscale-beam:0.1.0", "--temp_location=gs://b/t"]
    with pytest.raises(SystemExit, match="target_sequence='maybe': use true or false"):
        to_cli_args(["--target_sequence=maybe"], build_parser())


def test_every_flag_is_a_template_parameter_with_help():
    params = {p["name"]: p for p in metadata(build_parser())["parameters"]}
    flags = [o for a in build_parser()._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
    assert sorted(params) == sorted(f[2:].replace("-", "_") for f in flags)
    assert all(p["helpText"] and p["isOptional"] for p in params.values())
    assert all(name.isidentifier() for name in params)  # template parameter names are identifiers


@pytest.mark.slow
def test_the_template_file_runs_the_job_with_launcher_style_arguments(tmp_path):
    inputs = write_files(multi_series(), tmp_path / "in", 2, "parquet")
    out = tmp_path / "out"
    args = [f"--input={inputs}", f"--output={out}", "--time_column=ts", "--series_column=series",
            "--features=x1,x2,y", "--targets=y", "--look_back=10", "--horizon=3", "--target_sequence=true"]
    proc = subprocess.run([sys.executable, str(ROOT / "dataflow" / "main.py"), *args], capture_output=True,
                          text=True, timeout=300, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    window = json.loads((out / "metadata.json").read_text())["window"]
    assert (window["look_back"], window["horizon"], window["target_sequence"]) == (10, 3, True)
