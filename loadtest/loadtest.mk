# The load test's commands, included by the top-level Makefile (run from the
# project root): `make loadtest`, `plot`, `soak`, `generator`, `rust-peer`.
# What they do and their settings: loadtest/README.md. (loadtest/Makefile is
# what the wrk2 container runs.)

# The load generator (loadtest/generator, Rust): built on the host, copied into
# the wrk2 image with loadtest/ (the product's images need no Rust).
GENERATOR_SRC := $(wildcard loadtest/generator/src/*.rs) loadtest/generator/Cargo.toml loadtest/generator/Cargo.lock
generator: loadtest/bin/wrk2

loadtest/bin/wrk2: $(GENERATOR_SRC)
	@command -v cargo >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs) to build the load generator" >&2; exit 1; }
	cargo build --release --locked --quiet --manifest-path loadtest/generator/Cargo.toml
	mkdir -p loadtest/bin
	cp loadtest/generator/target/release/wrk2 $@

# The servers bjoern is compared with (profile peers) and the load generator.
PROFILES := --profile peers --profile loadtest
# PIN=1, what one core buys: the servers pinned to every CPU but the last, the
# generator to the last (loadtest/percore.yml), WORKERS one per server CPU, and
# the Rust server also driven directly (ours listen on unix sockets only: their
# direct figures come from loadtest/floors.py --pin).
ifeq ($(PIN),1)
NCPU := $(shell nproc)
ifeq ($(NCPU),1)
$(error PIN=1 needs 2 CPUs or more: one for the generator)
endif
SERVER_CPUS ?= $(if $(filter 2,$(NCPU)),0,0-$(shell expr $(NCPU) - 2))
GENERATOR_CPUS ?= $(shell expr $(NCPU) - 1)
TARGETS ?= bjoern=http://nginx:9000 \
           rust=http://nginx-rust:9000/predict rust-direct=http://worker-rust:8000/predict \
           gunicorn=http://nginx-gunicorn:9000 granian=http://nginx-granian:9000
export TARGETS
LOADTEST_COMPOSE := WORKERS=$(or $(WORKERS),$(shell expr $(NCPU) - 1)) SERVER_CPUS=$(SERVER_CPUS) \
    GENERATOR_CPUS=$(GENERATOR_CPUS) docker compose -f docker-compose.yml -f loadtest/compose.yml -f loadtest/percore.yml
else
LOADTEST_COMPOSE := $(LAB)
endif
# Where the sweep's spectra, PNGs and summary.md land (an absolute path).
LOADTEST_RESULTS ?= $(CURDIR)/loadtest/results
export LOADTEST_RESULTS
# CPU per request: each target's containers, by id (loadtest/cpu.py reads their cgroups).
GROUPS := bjoern-workers=worker bjoern-nginx=nginx gunicorn-workers=worker-gunicorn \
          gunicorn-nginx=nginx-gunicorn granian-workers=worker-granian granian-nginx=nginx-granian \
          rust-workers=worker-rust rust-nginx=nginx-rust \
          rust-direct-workers=worker-rust

# The Rust peer, messense/fasttext-serving, built on the host (loadtest/bin/).
rust-peer:
	loadtest/build-rust-peer.sh loadtest/bin

loadtest-images: images rust-peer generator
	$(LAB) $(PROFILES) build $(if $(APT_PROXY),--build-arg http_proxy=$(APT_PROXY))

loadtest: loadtest-images
	$(LOADTEST_COMPOSE) --profile peers up --detach --wait
	mkdir -p $(LOADTEST_RESULTS)
	groups=; for g in $(GROUPS); do \
	    groups="$$groups $${g%%=*}=$$($(LOADTEST_COMPOSE) --profile peers ps -q $${g#*=} | paste -sd, -)"; \
	done; \
	LOADTEST_USER=$$(id -u):$$(id -g) CPU_GROUPS="$$groups" $(LOADTEST_COMPOSE) $(PROFILES) run --rm wrk2 make loadtest

# The plots from the saved spectra, on the host (the venv has matplotlib): no image is built.
plot: install
	$(PY) -m loadtest.plot $(LOADTEST_RESULTS)

soak: install loadtest-images
	$(COMPOSE) up --detach --wait
	$(PY) -m loadtest.soak --out $(LOADTEST_RESULTS)/soak

# User-space instructions per request of whole servers under callgrind
# (loadtest/instructions.py; valgrind: docker/bootstrap/ensure-packages.sh test).
.PHONY: instructions perf-analyzer
INSTRUCTIONS_OUT ?= $(CURDIR)/loadtest/report/instructions/servers
instructions: install model
	PYTHON=$(PYTHON) docker/bootstrap/ensure-packages.sh test
	$(PY) -m loadtest.instructions --out $(INSTRUCTIONS_OUT) $(INSTRUCTIONS_ARGS)

# Triton's perf_analyzer (C++; in tritonclient 2.51.0's wheel) in its own venv,
# from loadtest/perf-analyzer.txt (pinned, hashed): loadtest/perf_analyzer.py runs it.
PERF_ANALYZER_VENV := loadtest/.perf-analyzer-venv
perf-analyzer: $(PERF_ANALYZER_VENV)/.installed

$(PERF_ANALYZER_VENV)/.installed: loadtest/perf-analyzer.txt
	PYTHON=$(PYTHON) docker/bootstrap/ensure-packages.sh perf
	$(PYTHON) -m venv $(PERF_ANALYZER_VENV)
	$(PERF_ANALYZER_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
	    -r loadtest/perf-analyzer.txt
	LD_LIBRARY_PATH=$$(echo $(PERF_ANALYZER_VENV)/lib/python3*/site-packages/nvidia/cuda_runtime/lib) \
	    $(PERF_ANALYZER_VENV)/bin/perf_analyzer --version
	touch $@
