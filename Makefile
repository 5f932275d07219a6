# kvlab — `make pipeline` runs the default pipeline; `make test` runs every test.
CARGO ?= cargo
KVLAB := target/release/kvlab
STORE ?= artifacts
PYENV := target/pyenv
# Python packages the tests use to read kvlab's Parquet (real duckdb and polars).
PY_TEST_PKGS := duckdb==1.5.6 polars==1.44.2

.PHONY: all build pipeline test test-python models clean-results fmt lint

all: build

build:
	$(CARGO) build --release --locked

pipeline: build
	$(KVLAB) --store $(STORE) run pipelines/default.toml

# Real-model and dataset files the tests read, fetched through the store.
models: build
	@mkdir -p target
	$(KVLAB) --store $(STORE) fetch smollm2-135m > target/smollm2.path
	$(KVLAB) --store $(STORE) fetch paul-graham-essays > target/essays.path
	$(KVLAB) --store $(STORE) fetch alice29 > target/alice29.path
	$(KVLAB) --store $(STORE) fetch mt-bench > target/mtbench.path
	$(KVLAB) --store $(STORE) fetch gemma3-270m > target/gemma3.path

$(PYENV)/ok:
	python3 -m venv $(PYENV)
	$(PYENV)/bin/python -m pip install --quiet --disable-pip-version-check $(PY_TEST_PKGS)
	touch $@

test-python: $(PYENV)/ok

test: build models test-python
	KVLAB_SMOLLM2_GGUF=$$(cat target/smollm2.path) \
	KVLAB_ESSAYS_DIR=$$(cat target/essays.path) \
	KVLAB_ALICE_TXT=$$(cat target/alice29.path) \
	KVLAB_MTBENCH=$$(cat target/mtbench.path) \
	KVLAB_GEMMA3_GGUF=$$(cat target/gemma3.path) \
	KVLAB_TEST_PYTHON=$(CURDIR)/$(PYENV)/bin/python \
	$(CARGO) test --release --locked

fmt:
	$(CARGO) fmt --all

clean-results:
	rm -rf results

-include tools/peers.mk

# `layering`: no two files in src/ import each other; no SIMD code in src/model.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) test --release --locked --test integration layering
