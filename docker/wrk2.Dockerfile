# The load generator: loadtest/bin/wrk2 (loadtest/generator, wrk2's constant-rate,
# coordinated-omission-corrected method in Rust; see loadtest/GENERATOR.md), built
# on the host by `make generator` and copied in with loadtest/, the sweep runner
# and the plots. Build context: the project root.
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
 && apt-get upgrade -y --no-install-recommends \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
COPY docker/wheelhouse/ /wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --require-hashes -r /wheels/requirements-loadtest.txt \
 && /opt/venv/bin/pip check

FROM ${BASE_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get upgrade -y --no-install-recommends \
 && apt-get install -y --no-install-recommends python3 make curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10003 --user-group --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin loadtest
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /loadtest
COPY loadtest/ /loadtest/
RUN test -x /loadtest/bin/wrk2 || { echo 'loadtest/bin/wrk2 missing: run make generator first' >&2; exit 1; }
USER loadtest
CMD ["make", "loadtest"]
