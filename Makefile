# Everyday commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Workers for the local stack; empty means one per CPU core.
WORKERS ?=

.DEFAULT_GOAL := help
.PHONY: help install model local-up local-down local-status test train

help:
	@echo "make install     create $(VENV) with the pinned dependencies"
	@echo "make model       fetch models/amazon_review_full.ftz and verify its sha256"
	@echo "make local-up    N workers + nginx on :9000 under supervisord (WORKERS=N, default: cores)"
	@echo "make local-down  stop them"
	@echo "make test        the whole test suite (unit, real model, end to end)"
	@echo "make train INPUT=reviews.csv OUTPUT=models/mine.ftz   train your own model"

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

model:
	$(PYTHON) models/fetch.py

local-up: install model
	$(PY) -m app.local up $(if $(WORKERS),--workers $(WORKERS))

local-down:
	$(PY) -m app.local down

local-status:
	$(PY) -m app.local status

test: install model
	$(PY) -m pytest tests -ra $(PYTEST_ARGS)

train: install
	$(PY) -m app.train $(INPUT) $(OUTPUT) $(TRAIN_ARGS)
