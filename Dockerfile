# seqscale trainer image: the official TensorFlow GPU image matching the pinned TensorFlow.
# Build and push (no Docker engine is needed for anything else in this repo):
#   docker build -t REGISTRY/seqscale-trainer:0.1.0-gpu .
#   docker push REGISTRY/seqscale-trainer:0.1.0-gpu
FROM tensorflow/tensorflow:2.21.0-gpu

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /opt/seqscale
COPY setup.py pyproject.toml README.md ./
COPY contract/ contract/
COPY preprocessing/ preprocessing/
COPY training/ training/
# The base image already has tensorflow==2.21; pip keeps it and adds the rest of setup.py.
RUN pip install . \
 && useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin seqscale

USER 1000:1000
EXPOSE 2222
ENTRYPOINT ["python", "-m", "training"]
