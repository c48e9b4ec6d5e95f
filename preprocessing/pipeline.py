"""The Beam job as named PTransforms: read -> plan -> units -> stats -> windows -> commit.

Composition only: the DoFns are in transforms.py, the logic in pure modules. Rows travel
through staged Arrow files and PCollections carry references to them (see staging.py), so
no stage holds the table in memory, whatever the runner. Materialized windows never pass
through a Beam shuffle by default: units stage their scaled rows, and one writer per shard
cuts its windows from the units that hold them (see shards.py).

    files ─ReadTables─▶ rows files ─PlanUnits─▶ plan (time range, step, split times)
                                   └MakeUnits─▶ (unit, fragments) ─ComputeScalingStats─▶ stats, scaling
    units ─MakeWindows(plan, scaling, per-series scaling)─▶ shards in staging ─CommitDataset─▶ metadata.json
"""

from __future__ import annotations

import apache_beam as beam

from contract.records import WINDOW_SETS
from preprocessing import cut
from preprocessing.options import JobConfig
from preprocessing.plan import make_plan, make_scaling, make_series_scaling
from preprocessing.transforms import (
    CleanUnitFn,
    CutUnitFn,
    KeyByUnitFn,
    MergeStatsFn,
    ReadTablesFn,
    ScanTimeFn,
    SumCountsFn,
    WriteManifestFn,
    WriteShardFn,
    WriteShuffledShardFn,
)

AsSingleton = beam.pvalue.AsSingleton


class ReadTables(beam.PTransform):
    """Input paths -> (staged rows files, per-file counts)."""

    def __init__(self, cfg: JobConfig, paths: list[str], staging: str) -> None:
        super().__init__()
        self.cfg, self.paths, self.staging = cfg, paths, staging

    def expand(self, pbegin):
        out = (
            pbegin
            | "ListFiles" >> beam.Create(list(enumerate(self.paths)))
            | "SpreadFiles" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadTablesFn(self.cfg, self.paths, self.staging)).with_outputs(ReadTablesFn.COUNTS, main="rows")
        )
        return out.rows, out[ReadTablesFn.COUNTS]


class PlanUnits(beam.PTransform):
    """Rows files -> the one Plan (their scans of the time column merged, then pure planning)."""

    def __init__(self, cfg: JobConfig, paths: list[str]) -> None:
        super().__init__()
        self.cfg, self.paths = cfg, paths

    def expand(self, rows):
        return rows | "ScanTime" >> beam.CombineGlobally(ScanTimeFn(self.paths)) | "Plan" >> beam.Map(make_plan, self.cfg)


class MakeUnits(beam.PTransform):
    """Rows files -> (unit key, fragments) of the non-empty work units, plus their training-row stats
    and counts (tagged)."""

    def __init__(self, cfg: JobConfig, paths: list[str], plan, staging: str) -> None:
        super().__init__()
        self.cfg, self.paths, self.plan, self.staging = cfg, paths, plan, staging

    def expand(self, rows):
        return (
            rows
            | "KeyByUnit" >> beam.ParDo(KeyByUnitFn(self.staging), plan=AsSingleton(self.plan))
            | "GroupByUnit" >> beam.GroupByKey()
            | "CleanUnits" >> beam.ParDo(CleanUnitFn(self.cfg, self.paths), plan=AsSingleton(self.plan)).with_outputs(
                CleanUnitFn.STATS, CleanUnitFn.COUNTS, CleanUnitFn.SERIES_STATS, main="units"
            )
        )


class ComputeScalingStats(beam.PTransform):
    """Per-unit training stats -> (global ColumnStats, Scaling): one full pass, mergeable."""

    def __init__(self, cfg: JobConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def expand(self, unit_stats):
        stats = unit_stats | "MergeStats" >> beam.CombineGlobally(
            MergeStatsFn(len(self.cfg.columns), self.cfg.scaler == "robust"))
        return stats, stats | "Scaling" >> beam.Map(make_scaling, self.cfg)


class ComputeSeriesScaling(beam.PTransform):
    """(series, training stats) per unit -> one SeriesScaling (a keyed combine), or None (--scale-by global)."""

    def __init__(self, cfg: JobConfig, scaling) -> None:
        super().__init__()
        self.cfg, self.scaling = cfg, scaling

    def expand(self, series_stats):
        if self.cfg.scale_by != "series":
            return series_stats.pipeline | "NoSeriesScaling" >> beam.Create([None])
        return (
            series_stats
            | "MergePerSeries" >> beam.CombinePerKey(MergeStatsFn(len(self.cfg.columns), False))
            | "AllSeries" >> beam.combiners.ToDict()
            | "SeriesScaling" >> beam.Map(make_series_scaling, AsSingleton(self.scaling), self.cfg)
        )


class MakeWindows(beam.PTransform):
    """Units -> shard files in staging (a ShardResult per shard), plus counts."""

    def __init__(self, cfg: JobConfig, staging: str, paths: list[str], plan, scaling, series_scaling) -> None:
        super().__init__()
        self.cfg, self.staging, self.paths, self.plan, self.scaling = cfg, staging, paths, plan, scaling
        self.series_scaling = series_scaling

    def expand(self, units):
        cfg = self.cfg
        out = units | "Cut" >> beam.ParDo(
            CutUnitFn(cfg, self.staging, self.paths), plan=AsSingleton(self.plan), scaling=AsSingleton(self.scaling),
            series_scaling=AsSingleton(self.series_scaling),
        ).with_outputs(CutUnitFn.COUNTS, main="staged")
        if cfg.full_shuffle:
            # Materialized windows through a Beam shuffle: right on Dataflow's shuffle
            # service, slow and memory-hungry on DirectRunner (see docs/design.md).
            results = (
                out.staged
                | "ShuffleBlocks" >> beam.GroupByKey()
                | "WriteShuffledShards" >> beam.ParDo(WriteShuffledShardFn(cfg, self.staging))
            )
        else:
            ids = [(s, i) for s in WINDOW_SETS for i in range(cut.shard_count(cfg, s))]
            results = (
                units.pipeline
                | "ShardIds" >> beam.Create(ids)
                | "SpreadShards" >> beam.Reshuffle()
                | "WriteShards" >> beam.ParDo(WriteShardFn(cfg, self.staging), units=beam.pvalue.AsList(out.staged))
            )
        return results, out[CutUnitFn.COUNTS]


class CommitDataset(beam.PTransform):
    """Shard results -> metadata.json and the commit (runs once, after every shard)."""

    def __init__(self, cfg: JobConfig, staging: str, counts, stats, plan, scaling, series_scaling) -> None:
        super().__init__()
        self.cfg, self.staging = cfg, staging
        self.counts, self.stats, self.plan, self.scaling = counts, stats, plan, scaling
        self.series_scaling = series_scaling

    def expand(self, results):
        return (
            results.pipeline
            | "Once" >> beam.Create([None])
            | "Commit" >> beam.ParDo(
                WriteManifestFn(self.cfg, self.staging),
                shard_results=beam.pvalue.AsList(results),
                counts=AsSingleton(self.counts),
                stats=AsSingleton(self.stats),
                plan=AsSingleton(self.plan),
                scaling=AsSingleton(self.scaling),
                series_scaling=AsSingleton(self.series_scaling),
            )
        )


def build(p: beam.Pipeline, cfg: JobConfig, paths: list[str], staging: str):
    """Attach the whole job to pipeline `p`; returns the PCollection of the one Manifest."""
    rows, read_counts = p | "ReadTables" >> ReadTables(cfg, paths, staging)
    plan = rows | "PlanUnits" >> PlanUnits(cfg, paths)
    cleaned = rows | "MakeUnits" >> MakeUnits(cfg, paths, plan, staging)
    stats, scaling = cleaned[CleanUnitFn.STATS] | "ComputeScalingStats" >> ComputeScalingStats(cfg)
    series_scaling = cleaned[CleanUnitFn.SERIES_STATS] | "ComputeSeriesScaling" >> ComputeSeriesScaling(cfg, scaling)
    results, window_counts = cleaned.units | "MakeWindows" >> MakeWindows(cfg, staging, paths, plan, scaling,
                                                                         series_scaling)
    counts = (
        (read_counts, cleaned[CleanUnitFn.COUNTS], window_counts)
        | "FlattenCounts" >> beam.Flatten()
        | "SumCounts" >> beam.CombineGlobally(SumCountsFn())
    )
    return results | "CommitDataset" >> CommitDataset(cfg, staging, counts, stats, plan, scaling, series_scaling)
