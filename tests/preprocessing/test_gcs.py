"""gs:// input and output against gcp-storage-emulator on 127.0.0.1 (real Beam GCS IO)."""

import uuid

import numpy as np
import pytest

from contract.manifest import Manifest
from preprocessing.cli import run
from preprocessing.errors import OutputError
from tests.helpers import job_args, multi_series, read_split, sort_windows, write_files

pytestmark = pytest.mark.slow


def test_gs_input_and_output_equal_local_run(tmp_path, gcs):
    bucket = gcs.create_bucket(f"seqscale-{uuid.uuid4().hex[:8]}")
    df = multi_series()
    pattern = write_files(df, tmp_path / "in", 3, "parquet")
    for i in range(3):
        bucket.blob(f"raw/part-{i}.parquet").upload_from_filename(str(tmp_path / "in" / f"part-{i}.parquet"))
    run(job_args(pattern, tmp_path / "local"))
    out = f"gs://{bucket.name}/datasets/one"
    run(job_args(f"gs://{bucket.name}/raw/*.parquet", out))

    # the manifest, read through google-cloud-storage
    m = Manifest.from_json(bucket.blob("datasets/one/metadata.json").download_as_text())
    names = sorted(b.name for b in gcs.list_blobs(bucket, prefix="datasets/one/"))
    listed = sorted(f"datasets/one/{s.file}" for sp in m.shards.values() for s in sp)
    assert names == sorted([*listed, "datasets/one/metadata.json"])  # no staging left behind
    dl = tmp_path / "downloaded"
    dl.mkdir()
    (dl / "metadata.json").write_text(bucket.blob("datasets/one/metadata.json").download_as_text())
    for sp in m.shards.values():
        for s in sp:
            blob = bucket.blob(f"datasets/one/{s.file}")
            blob.download_to_filename(str(dl / s.file))
            assert (dl / s.file).stat().st_size == s.bytes
    for split in ("train", "val", "test"):
        a, b = sort_windows(read_split(dl, split)), sort_windows(read_split(tmp_path / "local", split))
        np.testing.assert_array_equal(a["t"], b["t"])
        np.testing.assert_array_equal(a["x"], b["x"])

    # the trainer on the shards that came out of gs:// (TensorFlow's own gs:// client cannot be
    # pointed at the emulator; in production --data gs://... goes through tf.io.gfile)
    import os
    import subprocess
    import sys

    train = subprocess.run([sys.executable, "-m", "training", "--data", str(dl), "--job-dir", str(tmp_path / "job"),
                            "--epochs", "1", "--max-steps-per-epoch", "5", "--units", "8", "--verify-hashes",
                            "--members", "1"],
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert train.returncode == 0, train.stderr[-2000:]
    assert (tmp_path / "job" / "export" / "saved_model.pb").exists()

    with pytest.raises(OutputError, match="already holds a dataset"):
        run(job_args(f"gs://{bucket.name}/raw/*.parquet", out))
