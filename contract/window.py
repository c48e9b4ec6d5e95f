"""WindowSpec: which rows form a window. The only place window arithmetic lives.

Convention (DESIGN.md): for rows x[0..n) and targets y[0..n), the window whose first
row is s has inputs x[s .. s+L-1] and target y[s+L-1+H] (or y[s+L .. s+L-1+H] for a
target sequence). On one gap-free series this equals
`tf.keras.utils.timeseries_dataset_from_array(x[:-H], y[L-1+H:], sequence_length=L)`.
Windows are named by their first row ("start"); every derived row, count and time
below is a method here so the Beam job, the trainer, the doctor and the evaluation
cannot disagree about it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class WindowSpec:
    """Window geometry.

    Attributes:
        look_back: input rows per window (L).
        horizon: steps from the last input row to the (last) target row (H).
        stride: keep every stride-th window.
        target_sequence: the target is the next H rows instead of row H alone.
    """

    look_back: int
    horizon: int = 1
    stride: int = 1
    target_sequence: bool = False

    def __post_init__(self) -> None:
        for name in ("look_back", "horizon", "stride"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")

    # ---------------------------------------------------------------- sizes

    @property
    def span(self) -> int:
        """Rows one window touches, first input to last target (L + H)."""
        return self.look_back + self.horizon

    @property
    def halo_rows(self) -> int:
        """Rows after a window's first row that it still needs (L + H - 1)."""
        return self.span - 1

    @property
    def first_target_row(self) -> int:
        """Offset of the (last) target row from the window's first row (L - 1 + H)."""
        return self.look_back - 1 + self.horizon

    @property
    def target_rows(self) -> int:
        """Target steps per window: H for a target sequence, else 1."""
        return self.horizon if self.target_sequence else 1

    def x_shape(self, n_features: int) -> tuple[int, int]:
        return (self.look_back, n_features)

    def y_shape(self, n_targets: int) -> tuple[int, int]:
        """Targets as stored in a record: [target_rows, n_targets]."""
        return (self.target_rows, n_targets)

    def count(self, n: int) -> int:
        """Windows in a gap-free run of n rows (stride counted from its first row)."""
        return max(0, (n - self.span) // self.stride + 1) if n >= self.span else 0

    # ---------------------------------------------------------------- rows

    def last_input(self, starts: np.ndarray) -> np.ndarray:
        """Row of each window's last input (the row whose time names the window)."""
        return np.asarray(starts) + (self.look_back - 1)

    def target_index(self, starts: np.ndarray) -> np.ndarray:
        """Row of each window's (last) target."""
        return np.asarray(starts) + self.first_target_row

    def input_rows(self, starts: np.ndarray) -> np.ndarray:
        """[W, L] rows of each window's inputs."""
        return np.asarray(starts)[:, None] + np.arange(self.look_back)[None, :]

    @property
    def target_distances(self) -> np.ndarray:
        """Rows from the last input to each target row: 1..H for a sequence, else H alone."""
        return np.arange(1, self.horizon + 1) if self.target_sequence else np.array([self.horizon])

    def target_rows_of(self, starts: np.ndarray) -> np.ndarray:
        """Rows of each window's targets: [W] (single target) or [W, H] (sequence)."""
        last = self.last_input(starts)
        if self.target_sequence:
            return last[:, None] + self.target_distances[None, :]
        return last + self.horizon

    def start_of_last_input(self, rows: np.ndarray) -> np.ndarray:
        """Inverse of last_input: the first row of the window whose last input is `rows`."""
        return np.asarray(rows) - (self.look_back - 1)

    # ---------------------------------------------------------------- times

    def first_input_time(self, t_last, step):
        """Earliest time of a gap-free window whose last input is at t_last."""
        return t_last - (self.look_back - 1) * step

    def input_times(self, t_last, step) -> np.ndarray:
        """[W, L] times of the inputs of gap-free windows whose last input is at t_last."""
        return np.asarray(t_last)[:, None] - (self.look_back - 1 - np.arange(self.look_back))[None, :] * step

    def target_time(self, t_last, step):
        """Time of the (last) target of a gap-free window whose last input is at t_last."""
        return t_last + self.horizon * step

    # ---------------------------------------------------------------- json

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> WindowSpec:
        return cls(**d)
