# The inference worker: one single-threaded bjoern process.
# Build context: the project root (see /.dockerignore). Everything is built
# here, from the lock files, with nothing made on the host first: the builder
# stage holds the compilers, fetches every package from PyPI with its sha256
# checked (--require-hashes), and compiles bjoern and app/native; the worker
# stage gets only the venv and the model. Where pip's TLS to PyPI is
# inspected by a proxy, docker-compose.yml lends pip the host's CA bundle as
# the build secret `build-ca` (BUILD_CA_BUNDLE), never written into a layer.
# No `# syntax=` line: the Dockerfile frontend built into Docker Engine 20.10+
# has RUN --mount, and fetching another would need a registry.
ARG BASE_IMAGE=debian:bookworm-slim

# Each stage applies Debian's security updates over the base image (apt-get upgrade).
FROM ${BASE_IMAGE} AS build-base
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore PATH=/opt/venv/bin:$PATH
# Headers and compilers for the two sdists: bjoern (C, libev) and app/native (C++).
RUN apt-get update \
 && apt-get upgrade -y --no-install-recommends \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc g++ libc6-dev libev-dev \
 && rm -rf /var/lib/apt/lists/*
COPY docker/with-build-ca.sh /usr/local/bin/with-build-ca
WORKDIR /build

# The model, verified against its manifest's sha256 (models/fetch.py): the
# build context's copy when `make model` put one there, else its official URL.
FROM build-base AS model
COPY app/__init__.py app/manifest.py app/normalize.py app/
COPY models/ models/
RUN python3 -m models.fetch || { \
      echo "No verified model: put it at models/amazon_review_full.ftz (make model) or let this build reach its url." >&2; \
      exit 1; }

FROM build-base AS builder
# Dependencies before code: rebuilt only when a lock file changes. The build
# tools come first, hash-checked like the rest, so that no sdist is built
# with tools pip fetched unchecked (--no-build-isolation); they leave the venv
# once the builds are done.
COPY requirements-build.txt requirements.txt ./
RUN --mount=type=secret,id=build-ca \
    python3 -m venv /opt/venv \
 && with-build-ca pip install --require-hashes -r requirements-build.txt \
 && with-build-ca pip install --require-hashes --no-build-isolation -r requirements.txt
# The worker's compiled part: fastText's C++ from its pinned, hash-checked sdist
# (app/native/setup.py fetches it) and POST /inferreview's plain case.
COPY app/native/ native/
RUN --mount=type=secret,id=build-ca \
    with-build-ca pip install --no-deps --no-build-isolation ./native \
 && pip check

# The load test's peers (gunicorn with gevent, granian) on the same venv: only
# `target: peers` builds this (loadtest/compose.yml), never the product.
FROM builder AS peers-builder
COPY requirements-peers.txt ./
RUN --mount=type=secret,id=build-ca \
    with-build-ca pip install --require-hashes --no-build-isolation -r requirements-peers.txt \
 && pip uninstall --yes --quiet setuptools pybind11 \
 && pip check

FROM builder AS worker-venv
RUN pip uninstall --yes --quiet setuptools pybind11 && pip check

FROM ${BASE_IMAGE} AS worker
ENV DEBIAN_FRONTEND=noninteractive
# python3 for the venv's interpreter; libev4 for bjoern's C extension
# (app/native's C++ needs libstdc++6, which the base image has for apt);
# netcat for the healthcheck on a unix socket
RUN apt-get update \
 && apt-get upgrade -y --no-install-recommends \
 && apt-get install -y --no-install-recommends python3 libev4 netcat-openbsd \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app
COPY --from=worker-venv /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8000
WORKDIR /srv
# The model changes less often than the code, so it comes first.
COPY --from=model /build/models/amazon_review_full.json /build/models/amazon_review_full.ftz models/
COPY app/*.py app/
# Refuse to build an image whose model fails its checksum or its self-test.
RUN python -c "from app.classifier import Classifier; assert Classifier.load('models/amazon_review_full.ftz').self_test()"
USER app
EXPOSE 8000
COPY docker/worker-healthcheck.sh /usr/local/bin/worker-healthcheck
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 CMD ["/usr/local/bin/worker-healthcheck"]
# The worker drains on SIGTERM (app/server.py) and exits within SHUTDOWN_TIMEOUT.
STOPSIGNAL SIGTERM
CMD ["python", "-m", "app"]

# Same app, same model, other servers: `target: peers` (compose profile `peers`).
FROM worker AS peers
COPY --from=peers-builder /opt/venv /opt/venv

# The default target is the worker.
FROM worker
