# The inference worker: one single-threaded bjoern process on :8000.
# Build context: the project root (see /.dockerignore). Python packages come
# from docker/wheelhouse/, built on the host by `make images`
# (docker/bootstrap/build-wheelhouse.sh), because pip inside build containers cannot
# always reach PyPI; the same file builds where Docker Hub and PyPI are reachable.
ARG BASE_IMAGE=debian:bookworm-slim

# Each stage applies Debian's security updates over the base image (apt-get upgrade).
FROM ${BASE_IMAGE} AS builder
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get upgrade -y --no-install-recommends \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
# Dependencies before code: this layer is rebuilt only when they change. Every
# wheel is checked against its sha256 (the wheelhouse's copy of requirements.txt:
# the committed hashes, plus those of the wheels built from checked sdists).
# app/native's wheel is ours, built from this tree (its fastText sdist hash-checked).
COPY docker/wheelhouse/ /wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --require-hashes -r /wheels/requirements.txt \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --no-deps reviewrating-native \
 && /opt/venv/bin/pip check

# The load test's peers (gunicorn with gevent, granian) on top of the same venv.
FROM builder AS peers-builder
RUN /opt/venv/bin/pip install --no-index --find-links /wheels --require-hashes -r /wheels/requirements-peers.txt \
 && /opt/venv/bin/pip check

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
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8000
WORKDIR /srv
# The model (fetched and verified on the host by `make model`) changes less
# often than the code, so it comes first.
COPY models/amazon_review_full.json models/amazon_review_full.ftz models/
COPY app/ app/
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
