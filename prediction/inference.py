"""RunInference on seqscale's export: a ModelHandler of our own, and blocks of windows as arrays.

Beam 2.77's TensorFlow handlers cannot serve the export: importing
`apache_beam.ml.inference.tensorflow_inference` needs `tensorflow_hub`, they load with
`tf.keras.models.load_model` (which refuses a `tf.saved_model.save` export), and they call
the model positionally (the signature takes named inputs: `x`, and `time` with calendar
features, `series` with per-series scaling). This handler loads the SavedModel with
`tf.saved_model.load` once per worker process (RunInference shares it across threads), feeds
the serving signature by name, and takes a Block (many windows as arrays) per element, so no
Python object is made per window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

SIGNATURE = "serving_default"


class _NoTorchResourceWarning(logging.Filter):
    """Beam 2.77's RunInference imports `resource` together with its model manager, which needs
    torch; without torch it logs "Resource module is not available for current platform" on
    every model load and batch, on Linux, where `resource` works. Drop that line only."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Resource module is not available")


def quiet_resource_warning() -> None:
    root = logging.getLogger()
    if not any(isinstance(f, _NoTorchResourceWarning) for f in root.filters):
        root.addFilter(_NoTorchResourceWarning())


@dataclass
class Block:
    """Forecast inputs of many windows: raw values and their keys, all as arrays."""

    series: np.ndarray  # str [B] series keys ("" for a single-series table)
    origin: np.ndarray  # int64 [B]: each window's last input time
    x: np.ndarray  # float32 [B, L, F]: the file's features, raw
    time: np.ndarray | None  # int64 [B, L]: input times, when the export computes calendar features
    actual: np.ndarray | None = None  # float64 [B, rows, targets]: the actual targets (score mode)

    def __len__(self) -> int:
        return len(self.origin)

    def inputs(self, *, calendar: bool, per_series: bool) -> dict[str, np.ndarray]:
        out: dict[str, Any] = {"x": self.x}
        if calendar:
            out["time"] = self.time
        if per_series:
            out["series"] = self.series.astype(object).astype(bytes)
        return out


class LoadedExport:
    """The loaded SavedModel and its serving signature (the object must outlive the signature;
    Beam's Shared cache holds a weak reference, which a plain tuple cannot take)."""

    def __init__(self, loaded) -> None:
        self.loaded = loaded
        self.serve = loaded.signatures[SIGNATURE]


class ExportModelHandler(ModelHandler[Block, PredictionResult, Any]):
    """Blocks -> PredictionResult(block, the signature's outputs as arrays: `predictions` [B, (rows,)
    targets] in original units, and `quantiles` [B, (rows,) targets, Q] for a quantile model)."""

    def __init__(self, export_dir: str, *, calendar: bool, per_series: bool) -> None:
        super().__init__()
        self.export_dir, self.calendar, self.per_series = export_dir, calendar, per_series

    def load_model(self):
        from contract.logs import import_tensorflow

        tf = import_tensorflow()  # without its C++ start-up lines (a cuInit error line on a CPU worker)
        quiet_resource_warning()  # in the worker process, where RunInference logs it
        return LoadedExport(tf.saved_model.load(self.export_dir))

    def run_inference(self, batch: Sequence[Block], model, inference_args: dict[str, Any] | None = None
                      ) -> Iterable[PredictionResult]:
        import tensorflow as tf

        fn = model.serve
        for block in batch:
            inputs = {k: tf.constant(v) for k, v in block.inputs(calendar=self.calendar,
                                                                  per_series=self.per_series).items()}
            yield PredictionResult(block, {k: v.numpy() for k, v in fn(**inputs).items()})

    def get_num_bytes(self, batch: Sequence[Block]) -> int:
        return sum(b.x.nbytes for b in batch)

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}  # each element is a block already

    def get_metrics_namespace(self) -> str:
        return "seqscale_predict"


def as_rows(p: np.ndarray) -> np.ndarray:
    """[B, targets] or [B, rows, targets] -> [B, rows, targets]."""
    return p[:, None, :] if p.ndim == 2 else p
