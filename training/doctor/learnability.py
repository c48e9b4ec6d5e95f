"""Is there anything to learn, or too much? Baselines on a sample of windows, numpy only.

A loss that sits at the predict-the-mean level is often not the model's fault: the targets
may be unrelated to the inputs (a shuffled or misaligned column), and no learning rate fixes
that. A loss far *below* what any honest model reaches usually means the target leaked into
the inputs (a user's shifted column holding the future value). Both show on the sample
before any LSTM is trained, by comparing cheap predictors on a held-out part of it:

  mean         the fit part's mean target: the level a model must beat to have learned
  persistence  the target column's value in the last input row (when the target is an input)
  linear       ridge regression on the flattened window (the last rows when it is wide)
  features     ridge on random ReLU features of the same inputs (catches targets a linear
               model cannot see, so "nothing to learn" is not said of a nonlinear target)

The hold-out is the latest quarter of the sample in time, so neighbouring overlapping
windows do not flatter the baselines. The leak scan fits each input column at each lag
alone; with several series it works on values centred per series, so series whose levels
differ by many standard deviations do not make an ordinary column look perfect.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_LINEAR_DIMS = 1024  # inputs of the ridge models; wider windows keep their latest rows
RANDOM_FEATURES = 512
NOTHING_R2 = 0.01  # best held-out R2 below this: no predictor beats the mean
LEAK_R2 = 0.999  # one input column (centred per series) explains this much: a leak


@dataclass(frozen=True)
class Column:
    """The single input column (at a lag) that best explains the target."""

    name: str
    lag: int  # 0 = the last input row, k = k rows before it
    r2: float
    is_persistence: bool  # the target column itself in the last input row


@dataclass
class Baselines:
    """Held-out MSE of each predictor (in the loss's units) and R2 against the mean."""

    mse: dict[str, float] = field(default_factory=dict)
    best_column: Column | None = None
    holdout: int = 0

    def r2(self, name: str) -> float:
        return 1.0 - self.mse[name] / self.mse["mean"] if self.mse["mean"] > 0 else 0.0

    @property
    def best(self) -> str:
        """The predictor with the lowest held-out error other than the mean."""
        others = {k: v for k, v in self.mse.items() if k != "mean"}
        return min(others, key=others.get) if others else "mean"


def target_matrix(y: np.ndarray, task: str, num_classes: int | None) -> np.ndarray:
    """Targets as an (n, outputs) float matrix; classes one-hot so MSE is the Brier score."""
    y = np.asarray(y)
    if task == "multiclass":
        labels = y.reshape(len(y), -1).astype(int)
        return np.eye(num_classes, dtype=np.float64)[labels].reshape(len(y), -1)
    return y.reshape(len(y), -1).astype(np.float64)


def persistence_columns(features: list[str], targets: list[str], outputs: int) -> list[int] | None:
    """Input column index of each output's target, or None when a target is not an input."""
    idx = [features.index(t) if t in features else -1 for t in targets]
    if -1 in idx:
        return None
    return [idx[j % len(targets)] for j in range(outputs)]


def ridge_fit_predict(a_fit: np.ndarray, y_fit: np.ndarray, a_eval: np.ndarray,
                      alphas=(1e-3, 1e-1, 1e1, 1e3)) -> np.ndarray:
    """Ridge with an intercept, alpha chosen on the fit part's latest fifth, then refit on all of it."""
    mu, sd = a_fit.mean(axis=0), a_fit.std(axis=0)
    sd[sd == 0] = 1.0

    def solve(a, y, alpha):
        z = (a - mu) / sd
        ym = y.mean(axis=0)
        w = np.linalg.solve(z.T @ z + alpha * len(z) * np.eye(z.shape[1]) / z.shape[1], z.T @ (y - ym))
        return lambda b: ((b - mu) / sd) @ w + ym

    cut = int(len(a_fit) * 0.8)
    scores = [float(np.mean((solve(a_fit[:cut], y_fit[:cut], al)(a_fit[cut:]) - y_fit[cut:]) ** 2)) for al in alphas]
    model = solve(a_fit, y_fit, alphas[int(np.argmin(scores))])
    return model(a_eval)


def flat_inputs(x: np.ndarray) -> np.ndarray:
    """The window flattened for the linear models: its latest rows (up to MAX_LINEAR_DIMS values)
    plus each column's window mean, so a long look-back still contributes its level."""
    n, L, F = x.shape
    rows = max(1, min(L, (MAX_LINEAR_DIMS - F) // F))
    return np.concatenate([x[:, L - rows:, :].reshape(n, -1), x.mean(axis=1)], axis=1).astype(np.float64)


def compare_baselines(x: np.ndarray, y: np.ndarray, t: np.ndarray, *, features: list[str], targets: list[str],
                      task: str = "regression", num_classes: int | None = None, sid: np.ndarray | None = None,
                      seed: int = 0) -> Baselines:
    """Held-out errors of mean / persistence / linear / random features, and the leak scan.

    Args:
        x: (n, look_back, features) scaled inputs; y: (n, rows, targets) targets as stored.
        t: each window's last input time (orders the hold-out); sid: series ids or None.
    """
    n = len(x)
    Y = target_matrix(y, task, num_classes)
    order = np.argsort(t, kind="stable")
    fit, hold = order[: int(n * 0.75)], order[int(n * 0.75):]
    out = Baselines(holdout=len(hold))
    mean = Y[fit].mean(axis=0)
    out.mse["mean"] = float(np.mean((Y[hold] - mean) ** 2))
    cols = persistence_columns(features, targets, Y.shape[1]) if task == "regression" else None
    if cols is not None:
        out.mse["persistence"] = float(np.mean((Y[hold] - x[hold][:, -1, cols]) ** 2))
    a = flat_inputs(x)
    out.mse["linear"] = float(np.mean((ridge_fit_predict(a[fit], Y[fit], a[hold]) - Y[hold]) ** 2))
    h = nonlinear_features(a, fit, np.random.default_rng(seed), columns=x.shape[2])
    out.mse["features"] = float(np.mean((ridge_fit_predict(h[fit], Y[fit], h[hold]) - Y[hold]) ** 2))
    out.best_column = best_single_column(x, Y, features=features, sid=sid, persistence=cols)
    return out


def nonlinear_features(a: np.ndarray, fit: np.ndarray, rng: np.random.Generator, columns: int) -> np.ndarray:
    """Random ReLU features of the whole window (interactions) plus |z| and z^2 of each value in its
    latest rows (a nonlinearity of one input, which random mixtures of many inputs blur)."""
    mu, sd = a[fit].mean(axis=0), a[fit].std(axis=0)
    z = (a - mu) / np.where(sd > 0, sd, 1.0)
    w = rng.normal(size=(z.shape[1], RANDOM_FEATURES)) / np.sqrt(z.shape[1])
    recent = z[:, max(0, z.shape[1] - columns - RANDOM_FEATURES // 4):z.shape[1] - columns]  # before the window means
    return np.concatenate([np.maximum(z @ w + rng.normal(size=RANDOM_FEATURES), 0.0), np.abs(recent), recent ** 2],
                          axis=1)


def best_single_column(x: np.ndarray, Y: np.ndarray, *, features: list[str], sid: np.ndarray | None,
                       persistence: list[int] | None) -> Column | None:
    """The (column, lag) whose affine fit explains an output best (R2 on values centred per series)."""
    n, L, F = x.shape
    xs = x.reshape(n, L * F).astype(np.float64)
    ys = Y.astype(np.float64)
    if sid is not None and len(np.unique(sid)) > 1:
        xs, ys = xs.copy(), ys.copy()
        for s in np.unique(sid):
            m = sid == s
            xs[m] -= xs[m].mean(axis=0)
            ys[m] -= ys[m].mean(axis=0)
    xs -= xs.mean(axis=0)
    ys -= ys.mean(axis=0)
    sx, sy = np.sqrt((xs ** 2).sum(axis=0)), np.sqrt((ys ** 2).sum(axis=0))
    ok_x, ok_y = sx > 1e-12 * max(1.0, float(sx.max(initial=0))), sy > 0
    if not ok_x.any() or not ok_y.any():
        return None
    corr = (xs.T @ ys) / np.outer(np.where(ok_x, sx, 1.0), np.where(ok_y, sy, 1.0))
    r2 = np.where(np.outer(ok_x, ok_y), corr ** 2, 0.0)
    i, j = np.unravel_index(int(np.argmax(r2)), r2.shape)
    row, f = divmod(int(i), F)
    lag = L - 1 - row
    return Column(name=features[f], lag=lag, r2=float(min(1.0, r2[i, j])),
                  is_persistence=persistence is not None and lag == 0 and f == persistence[j])
