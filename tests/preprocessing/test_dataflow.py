"""The Beam job with DataflowRunner options: the graph builds and the job is not submitted."""

import uuid

import pytest

from preprocessing.cli import run
from tests.helpers import capture_dataflow_job, job_args, multi_series, write_files

pytestmark = pytest.mark.slow


def test_dataflow_runner_builds_the_job_without_submitting(tmp_path, gcs, monkeypatch):
    bucket = gcs.create_bucket(f"seqscale-df-{uuid.uuid4().hex[:8]}")
    write_files(multi_series(), tmp_path / "in", 1, "parquet")
    bucket.blob("raw/part-0.parquet").upload_from_filename(str(tmp_path / "in" / "part-0.parquet"))
    built = capture_dataflow_job(monkeypatch)
    manifest = run(job_args(f"gs://{bucket.name}/raw/*.parquet", f"gs://{bucket.name}/out",
                            "--runner", "DataflowRunner", "--project", "seqscale-test", "--region", "us-central1",
                            "--temp_location", f"gs://{bucket.name}/tmp", "--setup_file", "./setup.py",
                            "--dry_run", "True"))
    assert manifest is None  # nothing ran, nothing was written
    job = built["job"]
    names = {t.unique_name for t in job.proto_pipeline.components.transforms.values()}
    for stage in ("ReadTables", "PlanUnits", "PlanUnits/ScanTime", "MakeUnits", "MakeUnits/GroupByUnit",
                  "ComputeScalingStats", "MakeWindows", "CommitDataset"):
        assert stage in names, stage
    opts = job.options.get_all_options()
    assert opts["setup_file"] == "./setup.py" and opts["region"] == "us-central1"
    assert not [b.name for b in gcs.list_blobs(bucket, prefix="out/") if not b.name.endswith("/")]


def make_dry(*variables):
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(["make", "-n", "-s", "preprocess-dataflow", "PROJECT=p", "BUCKET=b", *variables],
                          cwd=str(root), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return " ".join(line.strip().rstrip("\\") for line in proc.stdout.splitlines() if "-m preprocessing" in line
                    or line.startswith((" ", "\t")) or "--" in line)


def test_make_preprocess_dataflow_honours_the_spec_file():
    cmd = make_dry("SPEC=spec.yaml")
    assert "--spec spec.yaml" in cmd and "--input" not in cmd and "--output" not in cmd
    assert "--setup_file ./setup.py" in cmd and "--sdk_container_image" not in cmd
    cmd = make_dry("SPEC=spec.yaml", "INPUT=gs://b/raw/*.csv", "BEAM_WORKER_IMAGE=r/seqscale-beam:0.1.0")
    assert "--input 'gs://b/raw/*.csv'" in cmd and "--output" not in cmd
    assert "--sdk_container_image r/seqscale-beam:0.1.0" in cmd and "--setup_file" not in cmd
