# Peer engines for kvlab's benchmark: llama.cpp (CPU build) and Hugging Face
# transformers (CPU torch). Included by the main Makefile; run from the repo root.
# Everything lands under $(PEERS_DIR) (git-ignored). All targets are idempotent:
# stamps and real outputs make a second `make peers` a no-op.
#
#   make peers            both peers below
#   make peers-hf         peers/venv: pinned torch (CPU, no nvidia wheels) + transformers + gguf
#   make peers-llamacpp   peers/llama.cpp/build/bin/{llama-bench,llama-perplexity,llama-simple,llama-speculative,llama-tokenize}
#   make peers-kvpress    kvpress 0.5.5 in peers/venv; make press-fixtures rewrites tests/fixtures/press
#   make peers-data       peers/data/alice29.txt (Brotli 1.2.1 sdist test data)
#   make peers-ppl        llama.cpp perplexity of alice29.txt, 512-token chunks
#   make bench [BENCH_ARGS="--engines llamacpp,hf --rounds 5"]   tools/bench.py

# Keep the including Makefile's default goal: nothing here becomes `make`'s default.
_PEERS_SAVED_GOAL := $(.DEFAULT_GOAL)

PEERS_DIR      ?= peers
PEERS_VENV     := $(PEERS_DIR)/venv
PEERS_PY       := $(PEERS_VENV)/bin/python
PEERS_JOBS     ?= 2
PEERS_GGUF     ?= /work/main/target/models/SmolLM2-135M-Instruct.Q4_1.gguf
BENCH_ARGS     ?=

LLAMACPP_PY_VER    := 0.3.36
LLAMACPP_SDIST     := $(PEERS_DIR)/dl/llama_cpp_python-$(LLAMACPP_PY_VER).tar.gz
LLAMACPP_SDIST_SHA := 832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
LLAMACPP_SRC       := $(PEERS_DIR)/llama.cpp
LLAMACPP_BIN       := $(LLAMACPP_SRC)/build/bin
LLAMACPP_TARGETS   := llama-bench llama-perplexity llama-simple llama-speculative llama-tokenize
# This machine's ISA spelled out instead of GGML_NATIVE: the CPU reports AMX and
# -march=native compiles ggml's AMX matmul, which segfaults on the Q4_1 model
# (llama-bench, ggml_backend_amx_mul_mat). Everything else the CPU has stays on.
# Machines without AVX-512 (an AVX2-only AMD EPYC) get every AVX-512/VNNI flag
# off: the AVX-512 build dies there with SIGILL. Flags are always all spelled
# out, so switching machines reconfigures an existing build directory.
LLAMACPP_AVX512    := $(if $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo y),ON,OFF)
LLAMACPP_AVXVNNI   := $(if $(shell grep -qw avx_vnni /proc/cpuinfo 2>/dev/null && echo y),ON,OFF)
LLAMACPP_ISA       ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON \
    -DGGML_F16C=ON -DGGML_AVX_VNNI=$(LLAMACPP_AVXVNNI) -DGGML_AVX512=$(LLAMACPP_AVX512) \
    -DGGML_AVX512_VBMI=$(LLAMACPP_AVX512) -DGGML_AVX512_VNNI=$(LLAMACPP_AVX512) \
    -DGGML_AVX512_BF16=$(LLAMACPP_AVX512) \
    -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

BROTLI_VER      := 1.2.1
ALICE_TXT       := $(PEERS_DIR)/data/alice29.txt
BROTLI_SDIST    := $(PEERS_DIR)/dl/brotli-$(BROTLI_VER).tar.gz
BROTLI_SHA      := 02b2f7b5a83485efe448a44ddf7983def05c3bb1dcf917d4f7154070260e13de
ALICE_SHA       := 7467306ee0feed4971260f3c87421154a05be571d944e9cb021a5713700c38f0

.PHONY: peers peers-hf peers-llamacpp peers-data peers-ppl bench peers-kvpress press-fixtures

peers: peers-hf peers-llamacpp peers-data

peers-hf: $(PEERS_VENV)/.installed

peers-llamacpp: $(LLAMACPP_BIN)/.built

peers-data: $(ALICE_TXT)

# --- Python venv -------------------------------------------------------------
# torch is installed with --no-deps (see tools/requirements-peers.txt); stub
# CUDA libraries make it import, and the check below proves a matmul works.
$(PEERS_VENV)/.installed: tools/requirements-peers.txt tools/torch_cpu_stubs.py
	test -x $(PEERS_PY) || python3 -m venv $(PEERS_VENV)
	$(PEERS_PY) -m pip install -q --no-deps -r tools/requirements-peers.txt
	$(PEERS_PY) tools/torch_cpu_stubs.py $$($(PEERS_PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
	$(PEERS_PY) -c 'import torch, transformers, gguf, numpy; \
	a = torch.randn(64, 64, dtype=torch.float64); \
	assert torch.allclose(a @ torch.eye(64, dtype=torch.float64), a); \
	assert not torch.cuda.is_available(); \
	print("peers venv ok: torch", torch.__version__, "transformers", transformers.__version__)'
	touch $@

# kvpress (tools/requirements-kvpress.txt) for the press parity fixtures.
peers-kvpress: $(PEERS_VENV)/.kvpress

$(PEERS_VENV)/.kvpress: tools/requirements-kvpress.txt | $(PEERS_VENV)/.installed
	$(PEERS_PY) -m pip install -q --no-deps -r tools/requirements-kvpress.txt
	$(PEERS_PY) -c 'import kvpress; print("kvpress ok")'
	touch $@

press-fixtures: peers-kvpress
	$(PEERS_PY) tools/press_fixtures.py --out tests/fixtures/press

# --- llama.cpp ---------------------------------------------------------------
# The llama.cpp copy vendored in the llama-cpp-python sdist. `--no-binary` names
# only that package so pip fetches its sdist without building cmake from source
# for the sdist's build requirements.
$(LLAMACPP_SDIST): | $(PEERS_VENV)/.installed
	mkdir -p $(@D)
	$(PEERS_PY) -m pip download -q --no-deps --no-binary llama-cpp-python \
	    -d $(@D) llama-cpp-python==$(LLAMACPP_PY_VER)
	echo "$(LLAMACPP_SDIST_SHA)  $@" | sha256sum -c -

$(LLAMACPP_SRC)/CMakeLists.txt: $(LLAMACPP_SDIST)
	rm -rf $(LLAMACPP_SRC) && mkdir -p $(LLAMACPP_SRC)
	tar -xzf $< -C $(LLAMACPP_SRC) --strip-components=3 \
	    llama_cpp_python-$(LLAMACPP_PY_VER)/vendor/llama.cpp
	touch $@

# CPU only, static; only the tools we run. Depends on this file so a flag
# change reconfigures (an unchanged configuration rebuilds nothing).
$(LLAMACPP_BIN)/.built: $(LLAMACPP_SRC)/CMakeLists.txt tools/peers.mk | $(PEERS_VENV)/.installed
	$(PEERS_VENV)/bin/cmake -S $(LLAMACPP_SRC) -B $(LLAMACPP_SRC)/build \
	    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF $(LLAMACPP_ISA) \
	    -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DGGML_OPENMP=ON \
	    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
	    -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF
	start=$$(date +%s); \
	$(PEERS_VENV)/bin/cmake --build $(LLAMACPP_SRC)/build -j$(PEERS_JOBS) \
	    --target $(LLAMACPP_TARGETS) && \
	echo "llama.cpp build: $$(( $$(date +%s) - start )) s" | tee $(LLAMACPP_SRC)/build/build-time.txt
	for t in $(LLAMACPP_TARGETS); do test -x $(LLAMACPP_BIN)/$$t; done
	touch $@

# --- data ----------------------------------------------------------------------
$(BROTLI_SDIST): | $(PEERS_VENV)/.installed
	mkdir -p $(@D)
	$(PEERS_PY) -m pip download -q --no-deps --no-binary Brotli -d $(@D) Brotli==$(BROTLI_VER)
	echo "$(BROTLI_SHA)  $@" | sha256sum -c -

$(ALICE_TXT): $(BROTLI_SDIST)
	mkdir -p $(@D)
	tar -xzf $< -O brotli-$(BROTLI_VER)/tests/testdata/alice29.txt > $@.tmp
	echo "$(ALICE_SHA)  $@.tmp" | sha256sum -c -
	mv $@.tmp $@

# --- measurements ----------------------------------------------------------------
peers-ppl: peers-llamacpp peers-data
	$(LLAMACPP_BIN)/llama-perplexity -m $(PEERS_GGUF) -f $(ALICE_TXT) -c 512 -b 512 -t 2 \
	    2>&1 | tee $(PEERS_DIR)/ppl-alice29.log | grep -E 'Final estimate|chunks'

bench: peers
	$(PEERS_PY) tools/bench.py --gguf $(PEERS_GGUF) --text $(ALICE_TXT) $(BENCH_ARGS)

.DEFAULT_GOAL := $(_PEERS_SAVED_GOAL)
