"""Writing matplotlib figures to local or gs:// paths (chief-only reports)."""

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
