# kvlab — `make pipeline` runs the default pipeline; `make test` runs every test.
CARGO ?= cargo
KVLAB := target/release/kvlab
STORE ?= artifacts
PYENV := target/pyenv
# Python packages the tests use to read kvlab's Parquet (real duckdb and polars).
PY_TEST_PKGS := duckdb==1.5.6 polars==1.44.2

.PHONY: all build pipeline test test-python models clean-results fmt lint cuda

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

# `make cuda`: the `cuda` build for the GPU machines (H100/H200, driver 580 =
# CUDA 13.0), made here without a GPU: a toolkit from the registry's wheels
# (tools/cuda_toolkit.sh, ~1.2 GB, git-ignored; CUDA_DIR may name one made
# already), its own target dir so the CPU binary is untouched, then a
# stripped, xz-compressed binary small enough for the GPU machine's upload.
CUDA_DIR ?= target/cuda
CUDA_TARGET ?= target/cuda-build
CUDA_COMPUTE_CAP ?= 90
cuda:
	@root=$$(tools/cuda_toolkit.sh $(CUDA_DIR)) || exit 1; \
	echo "cuda toolkit: $$root"; \
	CUDA_HOME=$$root CUDA_ROOT=$$root CUDA_PATH=$$root NVCC=$$root/bin/nvcc \
	PATH=$$root/bin:$$PATH CUDA_COMPUTE_CAP=$(CUDA_COMPUTE_CAP) \
	LIBRARY_PATH=$$root/lib64:$$root/lib64/stubs$${LIBRARY_PATH:+:$$LIBRARY_PATH} \
	$(CARGO) build --release --locked --features cuda --target-dir $(CUDA_TARGET)
	strip -o target/kvlab-cuda $(CUDA_TARGET)/release/kvlab
	xz -9 -T2 -f -k target/kvlab-cuda
	@echo "target/kvlab-cuda.xz: $$(stat -c %s target/kvlab-cuda.xz) bytes ($$(du -h target/kvlab-cuda.xz | cut -f1))"

clean-results:
	rm -rf results

-include tools/peers.mk

# `layering`: no two files in src/ import each other; no SIMD code in src/model.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings
	$(CARGO) test --release --locked --test integration layering
