"""Each PTransform of the job on its own, with TestPipeline + assert_that (DirectRunner)."""

import os

import apache_beam as beam
import numpy as np
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from contract.manifest import Manifest
from preprocessing import cut, shards
from preprocessing.pipeline import (
    CommitDataset,
    ComputeScalingStats,
    MakeUnits,
    MakeWindows,
    PlanUnits,
    ReadTables,
)
from preprocessing.plan import Scan, make_plan
from preprocessing.stats import ColumnStats, Scaling
from preprocessing.transforms import CleanUnitFn, load_unit
from tests.preprocessing.units import (
    HOUR,
    config,
    frame,
    rows_files,
    tables,
    unit_fragments,
    unit_of,
)


def ticks(df):
    return df["ts"].astype("datetime64[ns]").astype(np.int64).to_numpy()


def expected_plan(df, cfg):
    t = ticks(df)
    return make_plan(Scan(rows=len(df), t_min=int(t.min()), t_max=int(t.max()), kind="timestamp", step=HOUR), cfg)


def test_read_tables(tmp_path):
    df, cfg = frame(), config()
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(len(df)), 2)):
        paths.append(str(tmp_path / f"p{i}.parquet"))
        df.iloc[rows].to_parquet(paths[-1], index=False)
    with TestPipeline() as p:
        rows, counts = p | ReadTables(cfg, paths, str(tmp_path / "staging"))
        n = rows | beam.Map(lambda r: r.rows) | beam.CombineGlobally(sum)
        assert_that(n, equal_to([len(df)]), label="rows")
        read = counts | beam.Map(lambda c: (c["rows_read"], c["files_read.timestamp"])) | beam.CombineGlobally(
            lambda xs: tuple(map(sum, zip(*xs, strict=True))) if xs else (0, 0))
        assert_that(read, equal_to([(len(df), 2)]), label="counts")


def test_plan_units(tmp_path):
    df, cfg = frame(), config()
    with TestPipeline() as p:
        plan = p | beam.Create(rows_files(tables(df, cfg, parts=4), tmp_path)) | PlanUnits(cfg, ["f0", "f1", "f2", "f3"])
        assert_that(plan, equal_to([expected_plan(df, cfg)]))


def test_make_units_owns_every_row_once_and_counts_train_rows(tmp_path):
    df, cfg = frame(), config()
    plan = expected_plan(df, cfg)
    train_rows = int((ticks(df) < plan.boundaries.val_start).sum())
    with TestPipeline() as p:
        plan_pc = p | "Plan" >> beam.Create([plan])
        files = p | beam.Create(rows_files(tables(df, cfg, parts=3), tmp_path / "rows"))
        out = files | MakeUnits(cfg, ["f0", "f1", "f2"], plan_pc, str(tmp_path))
        units = out.units | beam.MapTuple(lambda key, frags: load_unit(key, frags, cfg, plan, ["f0", "f1", "f2"])[0])
        owned = units | beam.Map(lambda u: int(u.owned.sum())) | "SumOwned" >> beam.CombineGlobally(sum)
        assert_that(owned, equal_to([len(df)]), label="owned")
        sorted_ok = units | beam.Map(
            lambda u: bool(all((np.diff(u.time[u.series == s]) > 0).all() for s in np.unique(u.series))))
        assert_that(sorted_ok | "All" >> beam.CombineGlobally(all), equal_to([True]), label="sorted")
        count = out[CleanUnitFn.STATS] | beam.Map(lambda s: int(s.count)) | "SumTrain" >> beam.CombineGlobally(sum)
        assert_that(count, equal_to([train_rows]), label="train")


def test_compute_scaling_stats_equals_numpy():
    values = np.random.default_rng(0).normal(3, 2, size=(500, 2))
    cfg = config()

    def check(pair):
        stats, scaling = pair
        assert stats.count == 500
        np.testing.assert_allclose(stats.mean, values.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(scaling.scale, values.std(axis=0), rtol=1e-12)
        return True

    with TestPipeline() as p:
        parts = p | beam.Create([ColumnStats.of(v) for v in np.array_split(values, 7)])
        stats, scaling = parts | ComputeScalingStats(cfg)
        joined = stats | beam.Map(lambda s, sc: (s, sc), sc=beam.pvalue.AsSingleton(scaling))
        assert_that(joined | beam.Map(check), equal_to([True]))


def test_make_windows_writes_every_window_to_a_shard(tmp_path):
    cfg = config()
    unit = unit_of(frame(n=120), cfg)
    t0 = int(unit.time.min())
    plan = expected_plan(frame(n=120), cfg)
    scaling = Scaling(np.zeros(2), np.ones(2))
    per_split, _ = cut.unit_windows(unit, cut.unit_arrays(unit, scaling, cfg), plan, cfg)
    want = sorted((s, len(w)) for s, w in zip(("train", "val", "test"), per_split, strict=True))
    staging = str(tmp_path / "staging")
    units = unit_fragments(frame(n=120), cfg, plan, tmp_path)  # several units: their windows add up
    assert len(units) > 1
    with TestPipeline() as p:
        results, counts = p | beam.Create(units) | MakeWindows(
            cfg, staging, ["f0"], p | "Plan" >> beam.Create([plan]), p | "Scaling" >> beam.Create([scaling]),
            p | "NoSeriesScaling" >> beam.Create([None]))
        per = results | beam.Map(lambda r: (r.split, r.windows)) | beam.CombinePerKey(sum)
        assert_that(per, equal_to(want), label="windows")
        files = results | beam.Map(lambda r: os.path.getsize(r.staged) == r.bytes) | beam.CombineGlobally(all)
        assert_that(files, equal_to([True]), label="files")
        train = counts | beam.Map(lambda c: c["windows.train"]) | "SumTrain" >> beam.CombineGlobally(sum)
        assert_that(train, equal_to([want[1][1]]), label="counts")
    assert t0 < plan.boundaries.val_start


def test_commit_dataset_writes_the_manifest_last(tmp_path):
    cfg = config(output=str(tmp_path / "ds"), train_shards=1, eval_shards=1)
    staging = tmp_path / "ds" / ".seqscale-staging-x"
    (staging / "final").mkdir(parents=True)
    dest = str(staging / "final" / "train-00000-of-00001.tfrecord")
    x = np.zeros((20, 2), np.float32)
    recs = shards.encode_windows(x, x[:, :1], np.arange(20), np.zeros(20, np.int64), np.arange(5), cfg.window,
                                 block_size=4)
    windows, size, sha = shards.write_shard(dest, recs, compression="none")
    result = shards.ShardResult("train", 0, "train-00000-of-00001.tfrecord", windows, size, sha, dest)
    df = frame()
    plan = expected_plan(df, cfg)
    stats = ColumnStats.of(np.random.default_rng(0).normal(size=(50, 2)))
    with TestPipeline() as p:
        one = p | "Counts" >> beam.Create([{"rows_read": 50, "rows.train": 50}])
        manifest = p | beam.Create([result]) | CommitDataset(
            cfg, str(staging), one, p | "Stats" >> beam.Create([stats]), p | "Plan" >> beam.Create([plan]),
            p | "Scaling" >> beam.Create([Scaling(stats.mean, stats.std)]), p | "NoSeriesScaling" >> beam.Create([None]))
        assert_that(manifest | beam.Map(lambda m: (m.windows("train"), m.windows("val"), m.counts.rows_read)),
                    equal_to([(5, 0, 50)]))
    m = Manifest.from_json((tmp_path / "ds" / "metadata.json").read_text())
    assert sorted(os.listdir(tmp_path / "ds")) == ["metadata.json", "test-00000-of-00001.tfrecord",
                                                   "train-00000-of-00001.tfrecord", "val-00000-of-00001.tfrecord"]
    assert m.window == cfg.window and m.shards["train"][0].sha256 == sha


def test_unit_stages_log_progress_and_count_for_dataflows_ui(tmp_path, caplog):
    from apache_beam.metrics.metric import MetricsFilter

    from preprocessing import transforms

    progress = transforms.Progress("cleaned")
    progress.last -= transforms.PROGRESS_SECONDS + 1  # as if the last line was 11 s ago
    caplog.set_level("INFO")
    progress.tick(5000)
    progress.tick(5000)  # within 10 s of that line: no second one
    lines = [r.getMessage() for r in caplog.records if "cleaned" in r.getMessage()]
    assert len(lines) == 1 and "1 units, 5,000 rows" in lines[0] and "rows/s" in lines[0]

    df, cfg = frame(), config()
    plan = expected_plan(df, cfg)
    p = TestPipeline()
    files = p | beam.Create(rows_files(tables(df, cfg, parts=3), tmp_path / "rows"))
    _ = files | MakeUnits(cfg, ["f0", "f1", "f2"], p | "Plan" >> beam.Create([plan]), str(tmp_path))
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]}
    assert counters["units"] == len(unit_fragments(df, cfg, plan, tmp_path / "ref"))
    assert counters["unit_rows_cleaned"] >= len(df) and counters["unit_fragments"] >= counters["units"]
