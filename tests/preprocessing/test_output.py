"""The output lifecycle: refuse to clobber, commit shards then metadata.json last, clean up."""

import pytest

from preprocessing import output
from preprocessing.errors import OutputError


def test_prepare_refuses_an_existing_dataset_or_a_non_empty_dir(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "metadata.json").write_text("{}")
    with pytest.raises(OutputError, match="already holds a dataset"):
        output.prepare_output(str(tmp_path / "ds"), overwrite=False, run_id="r1")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(OutputError, match="is not empty"):
        output.prepare_output(str(tmp_path / "other"), overwrite=False, run_id="r1")
    staging = output.prepare_output(str(tmp_path / "ds"), overwrite=True, run_id="r1")
    assert staging.endswith(".seqscale-staging-r1")


def test_commit_moves_shards_writes_the_manifest_last_and_removes_stale_files(tmp_path):
    out = tmp_path / "ds"
    staging = output.prepare_output(str(out), overwrite=False, run_id="new")
    (out / "train-00000-of-00009.tfrecord").write_text("old shard")  # from an older dataset
    old_staging = out / ".seqscale-staging-killed"
    old_staging.mkdir()
    (old_staging / "junk").write_text("x")
    final = tmp_path / "ds" / ".seqscale-staging-new" / "final"
    final.mkdir(parents=True)
    (final / "train-00000-of-00001.tfrecord").write_text("shard")
    output.commit(str(out), staging, [(str(final / "train-00000-of-00001.tfrecord"), "train-00000-of-00001.tfrecord")],
                  '{"format_version": 2}\n')
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "train-00000-of-00001.tfrecord"]
    assert (out / "metadata.json").read_text() == '{"format_version": 2}\n'
    assert output.staging_areas(str(out)) == []


def test_discard_removes_only_this_runs_staging(tmp_path):
    out = tmp_path / "ds"
    staging = output.prepare_output(str(out), overwrite=False, run_id="a")
    (tmp_path / "ds" / ".seqscale-staging-a" / "units").mkdir(parents=True)
    (tmp_path / "ds" / ".seqscale-staging-a" / "units" / "u.npz").write_text("x")
    assert output.staging_areas(str(out)) == [staging]
    output.discard(staging)
    assert output.staging_areas(str(out)) == []
