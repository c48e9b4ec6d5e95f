"""Chief-only plots (loss curves) and writing figures to local or gs:// paths."""

from __future__ import annotations

import io


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


def plot_history(epochs: list[dict], path: str) -> None:
    """loss.png: train and validation loss per epoch, LR on a second axis."""
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
