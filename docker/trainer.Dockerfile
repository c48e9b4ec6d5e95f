# The seqscale trainer image: what every Kubernetes pod runs (python -m training).
#
#   docker build -f docker/trainer.Dockerfile -t REGISTRY/seqscale-trainer:0.1.0-gpu .
#   docker push REGISTRY/seqscale-trainer:0.1.0-gpu
#
# Layers: dependencies first (they change only with setup.py / constraints.txt), the code last,
# so a code change rebuilds a few kB, not 2.8 GB. Installs seqscale[train] only: no Beam.
# tests/test_shipped.py runs the `python -m pip` lines below, as written, in a fresh venv.
#
# Base image: the official TensorFlow GPU image of the pinned TensorFlow (constraints.txt).
# `make trainer-image` passes it from docker/base-images.env; `make pin-images` pins it there
# by digest (docker buildx imagetools inspect) for reproducible builds.
ARG BASE_IMAGE=tensorflow/tensorflow:2.21.0-gpu

FROM ${BASE_IMAGE} AS wheel
WORKDIR /src
COPY setup.py pyproject.toml README.md ./
COPY contract/ contract/
COPY evaluation/ evaluation/
COPY prediction/ prediction/
COPY preprocessing/ preprocessing/
COPY training/ training/
RUN python -m pip wheel --no-deps --wheel-dir /dist .

FROM ${BASE_IMAGE} AS trainer
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    TF_USE_LEGACY_KERAS=1
WORKDIR /opt/seqscale
# 1. dependencies: seqscale[train] with setup.py alone (no code yet), pinned by constraints.txt
COPY setup.py constraints.txt ./
RUN python -m pip install -c constraints.txt '.[train]' && python -m pip uninstall --yes seqscale
# 2. the code, as the wheel built above (no dependency resolution: step 1 did it)
COPY --from=wheel /dist/ /tmp/dist/
RUN python -m pip install --no-deps /tmp/dist/seqscale-*.whl && rm -rf /tmp/dist
RUN useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin seqscale

USER 1000:1000
EXPOSE 2222
ENTRYPOINT ["python", "-m", "training"]
