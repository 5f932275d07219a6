#!/usr/bin/env bash
# kvlab's CUDA build against transformers on a GPU machine (H100/H200, driver
# 580 = CUDA 13.0, PyTorch + transformers, no Rust): correctness of logits
# and K/V, then prefill/decode speed and the decode floor (tools/gpu_check.py).
# Runs from the repository root ON the GPU machine, in under 6 minutes.
#
#   here:   make cuda                      # -> target/kvlab-cuda.xz (~7 MB)
#   there:  tools/gpu_check.sh [BIN.xz]    # through the device tool's `run`,
#           carrying target/kvlab-cuda.xz; results under $OUT (or /tmp)
#
# Extra arguments go to gpu_check.py (e.g. --shapes smollm2-135m).
set -euo pipefail
bin_xz=${1:-target/kvlab-cuda.xz}
[ $# -gt 0 ] && shift
work=/tmp/kvlab-gpu
out=${OUT:-$work/out}
mkdir -p "$work" "$out"
[ -f "$bin_xz" ] || { echo "gpu_check: no $bin_xz (run make cuda here and carry it)" >&2; exit 2; }
if command -v xz >/dev/null; then
    xz -dc "$bin_xz" > "$work/kvlab"
else
    python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
        "$bin_xz" "$work/kvlab"
fi
chmod +x "$work/kvlab"

# The binary links libcuda (the driver's), cuBLAS, cuRAND and the CUDA 13
# runtime: the toolkit's copies first, then those of PyTorch's wheels.
py=$(command -v python3)
libs=/usr/local/cuda/lib64
for d in $("$py" - <<'EOF'
import glob, os, site
for s in site.getsitepackages():
    for d in sorted(glob.glob(os.path.join(s, "nvidia", "*", "lib"))):
        print(d)
EOF
); do libs=$libs:$d; done
export LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ldd "$work/kvlab" | grep -q "not found"; then
    echo "gpu_check: unresolved libraries:" >&2
    ldd "$work/kvlab" | grep "not found" >&2
    exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$work/kvlab" --version
export PYTHONUNBUFFERED=1
"$py" tools/gpu_check.py --kvlab "$work/kvlab" --work "$work" --out "$out" "$@" 2>&1 |
    tee "$out/gpu_check.log"
