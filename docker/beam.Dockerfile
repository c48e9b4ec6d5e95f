# The Beam job's images: Dataflow workers (--sdk_container_image) and the Flex Template.
#
#   docker build -f docker/beam.Dockerfile --target worker -t REGISTRY/seqscale-beam:0.1.0 .
#   docker build -f docker/beam.Dockerfile --target flex   -t REGISTRY/seqscale-flex:0.1.0 .
#   docker build -f docker/beam.Dockerfile --target predict-worker -t REGISTRY/seqscale-predict:0.1.0 .
#
# `worker` is Beam's own SDK container (the Python and Beam of constraints.txt) plus
# seqscale[preprocess]: no TensorFlow, and nothing is pip-installed when a worker VM starts
# (with --setup_file every VM would build and install the package at start-up).
# `flex` is the same image plus Google's Flex Template launcher, so launcher and workers run
# identical code (Google's recommended layout: run it with --sdk_container_image = this image).
# tests/test_shipped.py runs the `python -m pip` lines of the worker stage in a fresh venv and
# uses that venv as the SDK worker environment of a portable Beam run.
#
# Base images: `make beam-image` / `make flex-image` pass them from docker/base-images.env
# (`make pin-images` pins them by digest; flex-image refuses a launcher image without one).
ARG BEAM_IMAGE=apache/beam_python3.11_sdk:2.77.0
ARG LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base

# The sdist, built the way Beam's stager builds it for --setup_file: workers install the same artifact
FROM ${BEAM_IMAGE} AS sdist
WORKDIR /src
COPY setup.py pyproject.toml README.md ./
COPY contract/ contract/
COPY evaluation/ evaluation/
COPY prediction/ prediction/
COPY preprocessing/ preprocessing/
COPY training/ training/
RUN python setup.py --quiet sdist --dist-dir /dist

FROM ${LAUNCHER_IMAGE} AS launcher

FROM ${BEAM_IMAGE} AS worker
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/seqscale
# 1. dependencies: seqscale[preprocess] with setup.py alone (Beam is already in the base image)
COPY setup.py constraints.txt ./
RUN python -m pip install -c constraints.txt '.[preprocess]' && python -m pip uninstall --yes seqscale
# 2. the code: the sdist, as a Dataflow worker started with --setup_file installs it
COPY --from=sdist /dist/ /tmp/dist/
RUN python -m pip install --no-deps /tmp/dist/seqscale-*.tar.gz && rm -rf /tmp/dist
RUN useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin seqscale
USER 1000:1000
# Beam's boot starts the SDK harness (the base image's ENTRYPOINT, kept)

# seqscale-predict's workers: the same, plus TensorFlow to serve the export (seqscale[predict]:
# no tf-keras, no plotting). Run the job with --sdk_container_image = this image.
FROM ${BEAM_IMAGE} AS predict-worker
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /opt/seqscale
COPY setup.py constraints.txt ./
RUN python -m pip install -c constraints.txt '.[predict]' && python -m pip uninstall --yes seqscale
COPY --from=sdist /dist/ /tmp/dist/
RUN python -m pip install --no-deps /tmp/dist/seqscale-*.tar.gz && rm -rf /tmp/dist
RUN useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin seqscale
USER 1000:1000

FROM worker AS flex
COPY --from=launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher
COPY dataflow/main.py /opt/seqscale/dataflow/main.py
ENV FLEX_TEMPLATE_PYTHON_PY_FILE=/opt/seqscale/dataflow/main.py
ENTRYPOINT ["/opt/google/dataflow/python_template_launcher"]
