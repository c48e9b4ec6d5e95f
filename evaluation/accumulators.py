"""Forecast scores as mergeable accumulators: fed batch by batch, merged across workers, read once.

The shape of the preprocessing job's statistics combiner (tensorflow/transform's analyzers):
each accumulator holds sufficient statistics only (sums of squared and absolute errors and
element counts per horizon step, per forecaster; per forecast origin when asked), `add` takes
one batch of arrays, `merge` is exact and order-free (sums), and `result` reads the metrics.
Memory is a few numbers per step and per origin, whatever the number of windows.

Arrays are (windows, target rows, targets) in the units being scored; the metrics pool over
windows and targets, per target row (step) and over all of them, exactly as `np.mean` over
the whole split would (float64 sums).
"""

from __future__ import annotations

import numpy as np

from evaluation import metrics as fm


class ErrorSums:
    """Squared- and absolute-error sums and element counts of one forecaster, per target row."""

    def __init__(self, steps: int):
        self.sse = np.zeros(steps)
        self.sae = np.zeros(steps)
        self.n = np.zeros(steps, np.int64)

    def add(self, y: np.ndarray, p: np.ndarray) -> None:
        y, p = fm.as_rows(y), fm.as_rows(p)
        if y.shape[1] != len(self.sse):
            raise ValueError(f"windows with {y.shape[1]} target rows, not {len(self.sse)}")
        err = p - y
        self.sse += np.einsum("wst,wst->s", err, err)
        self.sae += np.abs(err).sum(axis=(0, 2))
        self.n += err.shape[0] * err.shape[2]

    def merge(self, other: ErrorSums) -> ErrorSums:
        self.sse += other.sse
        self.sae += other.sae
        self.n += other.n
        return self

    @staticmethod
    def _metrics(sse: float, sae: float, n: int, scale: float | None) -> dict[str, float]:
        mse = sse / n if n else float("nan")
        out = {"rmse": float(np.sqrt(mse)), "mae": float(sae / n) if n else float("nan"), "mse": float(mse)}
        if scale:
            out["mase"] = out["mae"] / scale
        return out

    def metrics(self, scale: float | None = None) -> dict[str, float]:
        """RMSE, MAE, MSE (and MASE with `scale`) pooled over every step."""
        return self._metrics(float(self.sse.sum()), float(self.sae.sum()), int(self.n.sum()), scale)

    def per_step(self, distances, scale: float | None = None) -> list[dict]:
        """The same per target row; `distances` names each row's step."""
        return [{"step": int(d), **self._metrics(float(self.sse[i]), float(self.sae[i]), int(self.n[i]), scale)}
                for i, d in enumerate(distances)]


class OriginSums:
    """Per forecast origin (a window's last input time): windows, elements and squared errors
    of the model and of persistence. One small row per distinct origin, so only for scoring
    ranges with few origins (a backtest), never for every window of a split."""

    def __init__(self):
        self.rows: dict[int, np.ndarray] = {}

    def add(self, origins: np.ndarray, y: np.ndarray, p: np.ndarray, last: np.ndarray | None) -> None:
        y, p = fm.as_rows(y), fm.as_rows(p)
        w = len(origins)
        per_window = ((p - y) ** 2).reshape(w, -1).sum(axis=1)
        persist = None if last is None else ((fm.as_rows(last) - y) ** 2).reshape(w, -1).sum(axis=1)
        keys, inverse = np.unique(np.asarray(origins, np.int64), return_inverse=True)
        sums = np.zeros((len(keys), 4))
        np.add.at(sums[:, 0], inverse, 1)
        np.add.at(sums[:, 2], inverse, per_window)
        if persist is not None:
            np.add.at(sums[:, 3], inverse, persist)
        else:
            sums[:, 3] = np.nan
        sums[:, 1] = sums[:, 0] * (y.shape[1] * y.shape[2])
        for k, row in zip(keys.tolist(), sums, strict=True):
            if k in self.rows:
                self.rows[k] += row
            else:
                self.rows[k] = row

    def merge(self, other: OriginSums) -> OriginSums:
        for k, row in other.rows.items():
            if k in self.rows:
                self.rows[k] = self.rows[k] + row
            else:
                self.rows[k] = row.copy()
        return self

    def result(self, time_kind: str) -> list[dict]:
        out = []
        for origin in sorted(self.rows):
            windows, n, sse, persist = self.rows[origin]
            row = {"origin": fm.time_label(time_kind, origin), "windows": int(windows), "rmse": float(np.sqrt(sse / n))}
            if not np.isnan(persist):
                row["persistence_rmse"] = float(np.sqrt(persist / n))
            out.append(row)
        return out


class RegressionAccumulator:
    """A regression forecaster's scores beside its baselines on the same windows.

    `add` takes one batch in original units (targets `y`, model `p`, each baseline's
    forecast by name) and optionally in scaled units (what the loss sees), and the origin of
    each window when per-origin scores were asked for.
    """

    def __init__(self, steps: int, *, per_origin: bool = False):
        self.steps = steps
        self.windows = 0
        self.scaled = ErrorSums(steps)
        self.model = ErrorSums(steps)
        self.baselines: dict[str, ErrorSums] = {}
        self.origins = OriginSums() if per_origin else None

    def add(self, y: np.ndarray, p: np.ndarray, baselines: dict[str, np.ndarray], *,
            y_scaled: np.ndarray | None = None, p_scaled: np.ndarray | None = None,
            origins: np.ndarray | None = None) -> RegressionAccumulator:
        self.windows += len(y)
        self.model.add(y, p)
        if y_scaled is not None:
            self.scaled.add(y_scaled, p_scaled)
        for name, pred in baselines.items():
            self.baselines.setdefault(name, ErrorSums(self.steps)).add(y, pred)
        if self.origins is not None:
            if origins is None:
                raise ValueError("this accumulator scores per origin: pass each window's origin")
            self.origins.add(origins, y, p, baselines.get("persistence"))
        return self

    def merge(self, other: RegressionAccumulator) -> RegressionAccumulator:
        self.windows += other.windows
        self.scaled.merge(other.scaled)
        self.model.merge(other.model)
        for name, sums in other.baselines.items():
            if name in self.baselines:
                self.baselines[name].merge(sums)
            else:
                self.baselines[name] = sums
        if self.origins is not None and other.origins is not None:
            self.origins.merge(other.origins)
        return self


class ClassificationAccumulator:
    """Accuracy of the model and of the majority-class baseline."""

    def __init__(self):
        self.windows = 0
        self.correct = 0
        self.majority_correct = 0

    def add(self, y: np.ndarray, predicted: np.ndarray, majority: int) -> ClassificationAccumulator:
        y = np.asarray(y).reshape(len(y), -1)[:, 0].astype(np.int64)
        self.windows += len(y)
        self.correct += int((np.asarray(predicted) == y).sum())
        self.majority_correct += int((y == majority).sum())
        return self

    def merge(self, other: ClassificationAccumulator) -> ClassificationAccumulator:
        self.windows += other.windows
        self.correct += other.correct
        self.majority_correct += other.majority_correct
        return self

    def result(self) -> dict:
        n = max(self.windows, 1)
        return {"windows": self.windows, "model": {"accuracy": self.correct / n},
                "baselines": {"majority_class": {"accuracy": self.majority_correct / n}}}
