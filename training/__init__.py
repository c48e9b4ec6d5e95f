"""seqscale training: the multi-worker stacked-LSTM trainer (reads preprocessing's manifest).

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy ("Attempt to convert a
value (PerReplica...)", keras-team/keras#20585); Keras 2 from the `tf-keras` package
works. `tf.keras` resolves to Keras 2 only when TF_USE_LEGACY_KERAS=1 is set before
TensorFlow is first imported, so importing this package sets it (without overriding an
explicit choice) and `ensure_keras2` checks it took effect.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def ensure_keras2() -> None:
    """Fail clearly when tf.keras is Keras 3 (TensorFlow imported before this package)."""
    import tensorflow as tf

    name = getattr(tf.keras, "__name__", "")
    if not name.startswith("tf_keras"):
        raise RuntimeError(
            f"tf.keras is {name or 'Keras 3'}, not Keras 2: set TF_USE_LEGACY_KERAS=1 before TensorFlow is "
            "imported (Keras 3 fit fails under MultiWorkerMirroredStrategy, keras-team/keras#20585)"
        )


def import_tensorflow():
    """TensorFlow without its C++ start-up lines unless debug (contract.logs.import_tensorflow)."""
    from contract.logs import import_tensorflow as quiet

    return quiet()
