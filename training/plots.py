"""Chief-only plots (loss curves) and writing figures to local or gs:// paths."""

from __future__ import annotations

import io
import logging

log = logging.getLogger(__name__)


def save_figure(fig, path: str) -> None:
    """PNG through tf.io.gfile, so job dirs on gs:// work; closes the figure."""
    import matplotlib.pyplot as plt
    import tensorflow as tf

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buf.getvalue())


def plot_history(epochs: list[dict], path: str) -> bool:
    """loss.png: train and validation loss per epoch, LR on a second axis (if it can be drawn)."""
    return safe_plot(_plot_history, path, epochs, path)


def safe_plot(draw, path: str, *args) -> bool:
    """draw(*args), never raising: False (and a warning naming `path`) when it could not.

    Plots are drawn after training: a missing plotting library (an image built without the
    `train` extra) or an unwritable figure must cost the picture, not the export and eval.json.
    The numbers behind every picture are in a JSON file beside it.
    """
    name = path.rsplit("/", 1)[-1]
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log.warning("%s not written: matplotlib is not installed (pip install 'seqscale[train]')", name)
        return False
    try:
        draw(*args)
    except Exception as e:  # a picture is never worth the run
        log.warning("%s not written: %s: %s", name, type(e).__name__, e)
        return False
    return True


def _plot_history(epochs: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(8, 4.5))
    x = [e["epoch"] for e in epochs]
    ax.plot(x, [e.get("loss") for e in epochs], label="train loss", marker=".")
    if any("val_loss" in e for e in epochs):
        ax.plot(x, [e.get("val_loss") for e in epochs], label="validation loss", marker=".")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("loss (scaled units)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if any("lr" in e for e in epochs):
        ax2 = ax.twinx()
        ax2.plot(x, [e.get("lr") for e in epochs], color="gray", linestyle="--", label="learning rate")
        ax2.set_ylabel("learning rate")
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
    else:
        ax.legend()
    save_figure(fig, path)


def plot_reliability(quantiles: dict, path: str) -> bool:
    """reliability.png: each level's observed frequency on the test range (targets at or below it)
    against its nominal level; a calibrated model sits on the diagonal (eval.json "quantiles")."""
    return safe_plot(_plot_reliability, path, quantiles, path)


def _plot_reliability(quantiles: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels, observed = quantiles["levels"], quantiles["observed"]
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="gray", linestyle=":", label="calibrated")
    ax.plot(levels, observed, marker="o", label="model, test range")
    before = quantiles.get("calibration", {}).get("test_before_observed")
    if before:
        ax.plot(levels, before, marker="x", linestyle="--", label="before --calibrate")
    ax.set_xlabel("quantile level (nominal)")
    ax.set_ylabel("targets at or below it (observed)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    save_figure(fig, path)
