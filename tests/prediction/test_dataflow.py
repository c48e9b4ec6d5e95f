"""seqscale-predict with DataflowRunner options: both modes' graphs build, nothing is submitted or written."""

import uuid

import pytest

import training  # noqa: F401
from prediction.cli import run as predict
from tests.helpers import capture_dataflow_job

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("mode", ["forecast", "score"])
def test_dataflow_runner_builds_the_predict_job_without_submitting(mode, tmp_path, gcs, monkeypatch):
    from tests.prediction.test_forecast import make_export

    export, _ = make_export(tmp_path / "e", ("--scale-by", "series"))
    bucket = gcs.create_bucket(f"seqscale-pred-{uuid.uuid4().hex[:8]}")
    bucket.blob("raw/part-0.parquet").upload_from_filename(str(tmp_path / "e" / "raw.parquet"))
    built = capture_dataflow_job(monkeypatch)
    result = predict(["--export", str(export), "--input", f"gs://{bucket.name}/raw/*.parquet",
                      "--output", f"gs://{bucket.name}/out", *(["--split", "test"] if mode == "score" else []),
                      "--runner", "DataflowRunner", "--project", "seqscale-test", "--region", "us-central1",
                      "--temp_location", f"gs://{bucket.name}/tmp", "--setup_file", "./setup.py", "--dry_run", "True"])
    assert result is None  # nothing ran, nothing was written
    names = {t.unique_name for t in built["job"].proto_pipeline.components.transforms.values()}
    stages = (("ReadTails", "CombineTails", "MakeWindows", "RunInference", "WriteForecasts", "CommitPredictions")
              if mode == "forecast" else
              ("ReadTables", "PlanUnits", "KeyByUnit", "GroupByUnit", "CutBlocks", "RunInference", "Score",
               "CommitPredictions"))
    for stage in stages:
        assert stage in names, stage
    assert not [b.name for b in gcs.list_blobs(bucket, prefix="out/") if not b.name.endswith("/")]
