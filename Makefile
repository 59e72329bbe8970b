# make serve: serve models/default on 0.0.0.0:$(PORT).  make test: build .venv and run every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
SHARED ?= ../shared
DATA := $(SHARED)/data/conll2003

.PHONY: serve test lint train evaluate gradcheck bench bench-serve bench-peers bench-bulk bench-own-data ablation clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-train.txt requirements-ray.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

serve: $(VENV)/.runtime
	PATH="$(CURDIR)/$(BIN):$$PATH" PORT=$(PORT) deploy/entrypoint.sh

test: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: $(VENV)/.dev
	$(BIN)/ruff check .

# OpenBLAS picks its kernels by CPU and they round differently; one kernel set (AVX2, on every x86-64
# machine of the last decade) gives the same weights wherever make train runs.
BLAS_KERNELS := $(if $(filter x86_64 amd64 AMD64,$(shell uname -m)),OPENBLAS_CORETYPE=Haswell,)

train: $(VENV)/.dev
	$(BLAS_KERNELS) $(BIN)/python -m training.train --train $(DATA)/train.txt --dev $(DATA)/valid.txt --out models/default --name nerve-conll03-en

evaluate: $(VENV)/.dev
	$(BIN)/python -m training.evaluate --model models/default --data $(DATA)/valid.txt

gradcheck: $(VENV)/.dev
	$(BIN)/python -m model.gradcheck

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/forward.py
	$(BIN)/python benchmarks/threads.py
	$(BIN)/python benchmarks/models.py

PEERS := benchmarks/peers/.venv

$(PEERS)/.done: benchmarks/peers/requirements.txt requirements.txt
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install --quiet -r benchmarks/peers/requirements.txt
	touch $@

bench-peers: $(PEERS)/.done
	$(PEERS)/bin/python benchmarks/peers/run.py

bench-bulk: $(PEERS)/.done $(VENV)/.dev
	$(BIN)/python benchmarks/bulk.py

# Fine-tuning the shipped model on the DRUG set (old and new types' F1), and checking and training
# on large span files (time and peak memory).
bench-own-data: $(VENV)/.dev
	$(BIN)/python benchmarks/finetune.py
	$(BIN)/python benchmarks/own_data.py

bench-serve: $(VENV)/.dev
	$(BIN)/python benchmarks/serve.py

ablation: $(VENV)/.dev
	$(BIN)/python -m training.ablation --train $(DATA)/train.txt --dev $(DATA)/valid.txt --out training/ABLATION.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
