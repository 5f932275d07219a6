#!/usr/bin/env bash
# A CUDA 13.0 toolkit good enough to *build* kvlab with `--features cuda` on a
# machine without a GPU (candle 0.11.1 links cudarc dynamically, so nvcc, the
# headers and the libraries must be present at build time).
#
#   tools/cuda_toolkit.sh DIR      prints DIR/root once it is ready
#
# DIR/venv  the registry's nvidia-* 13.0.x wheels (~1.2 GB)
# DIR/root  bin/ include/ nvvm/ lib64/ laid out as a toolkit, with unversioned
#           .so links and a link-time stub libcuda.so (soname libcuda.so.1):
#           the real driver library is the GPU machine's, found there at run
#           time through LD_LIBRARY_PATH.
# Idempotent: a second call only prints the root.
set -euo pipefail
dir=${1:?usage: tools/cuda_toolkit.sh DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
root=$dir/root
if [ -f "$root/.ok" ]; then
    echo "$root"
    exit 0
fi

# 13.0.x: the GPU machines' driver (580) runs CUDA 13.0 code.
pkgs=(
    'nvidia-cuda-nvcc==13.0.*' 'nvidia-nvvm==13.0.*' 'nvidia-cuda-crt==13.0.*'
    'nvidia-cuda-runtime==13.0.*' 'nvidia-cuda-cccl==13.0.*' 'nvidia-cublas==13.0.*'
    'nvidia-curand==10.4.0.*' 'nvidia-cuda-nvrtc==13.0.*'
)
if [ ! -f "$dir/venv/.ok" ]; then
    python3 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install --quiet --disable-pip-version-check "${pkgs[@]}" >&2
    touch "$dir/venv/.ok"
fi
site=$("$dir/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cu=$site/nvidia/cu13
[ -d "$cu" ] || cu=$site/nvidia
[ -x "$cu/bin/nvcc" ] || { echo "cuda_toolkit: no nvcc under $cu/bin" >&2; exit 1; }

rm -rf "$root"
mkdir -p "$root/lib64"
ln -s "$cu/bin" "$root/bin"
ln -s "$cu/include" "$root/include"
[ -d "$cu/nvvm" ] && ln -s "$cu/nvvm" "$root/nvvm"
# Unversioned links (libcublas.so -> libcublas.so.13), as a toolkit has them.
for lib in "$cu"/lib/*.so.* "$cu"/lib64/*.so.*; do
    [ -e "$lib" ] || continue
    base=$(basename "$lib")
    ln -sf "$lib" "$root/lib64/$base"
    ln -sf "$lib" "$root/lib64/${base%%.so.*}.so"
done
for a in "$cu"/lib/*.a "$cu"/lib64/*.a; do
    [ -e "$a" ] && ln -sf "$a" "$root/lib64/$(basename "$a")"
done

# The stub driver: every cu* entry point cuda.h declares, before and after its
# versioning macros (cuCtxCreate -> cuCtxCreate_v2), as an empty function.
stub=$dir/stub
mkdir -p "$stub"
{
    grep -ohE '\bCUDAAPI[[:space:]]+cu[A-Za-z0-9_]+' "$cu/include/cuda.h" | awk '{print $2}'
    gcc -E -I "$cu/include" "$cu/include/cuda.h" 2>/dev/null |
        grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' ('
} | sort -u | awk '{print "void " $1 "(void) {}"}' > "$stub/libcuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib64/libcuda.so" "$stub/libcuda_stub.c"
mkdir -p "$root/lib64/stubs"
ln -sf "$root/lib64/libcuda.so" "$root/lib64/stubs/libcuda.so"
touch "$root/.ok"
echo "$root"
