#!/usr/bin/env python3
"""Make PyPI's CUDA build of torch importable on a CPU-only machine without
the multi-GB nvidia-* wheels.

PyPI's Linux torch wheel links libtorch_cpu/libtorch_cuda against libcudart,
libcublas, libcudnn, ... (found through RPATH $ORIGIN/../../nvidia/cu13/lib).
This script writes tiny stub libraries with the same sonames into that folder.
Every stub function returns 100 (cudaErrorNoDevice), so torch sees "no CUDA
device" and runs on the CPU; CUDA code paths are never reached on CPU tensors.
Versioned references (sym@libcudart.so.13) get matching version nodes, or the
loader would refuse the stub.

Usage: torch_cpu_stubs.py SITE_PACKAGES   (idempotent; needs nm, readelf, cc)
"""
import os
import re
import subprocess
import sys
import tempfile

# Libraries we provide; anything else NEEDED must exist on the system.
STUB_PREFIXES = ("libcu", "libnv", "libnccl", "libcudnn")
# Unversioned references that belong to the stubbed libraries (the driver,
# cuFile, cuSPARSELt, NCCL). Other unversioned references (a few libstdc++
# ones) must resolve to the real library, never to a stub.
LOOSE_PREFIXES = ("cu", "nccl", "nvshmem")


def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    return p.stdout


def needed(path):
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", run("readelf", "-d", path))


def version_files(path):
    """version name -> soname, from the verneed section."""
    out, cur = {}, None
    for line in run("readelf", "-V", path).splitlines():
        m = re.search(r"File: (\S+)", line)
        if m:
            cur = m.group(1)
        m = re.search(r"Name: (\S+)\s+Flags", line)
        if m and cur:
            out[m.group(1)] = cur
    return out


def symbols(path, undefined):
    flag = "--undefined-only" if undefined else "--defined-only"
    res = []
    for line in run("nm", "-D", flag, "--with-symbol-versions", path).splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[-2] in ("w", "v"):
            continue  # weak references need no definition
        name = parts[-1]
        sym, _, ver = name.partition("@")
        res.append((sym, ver.lstrip("@")))
    return res


def main():
    site = sys.argv[1]
    tlib = os.path.join(site, "torch", "lib")
    libs = [os.path.join(tlib, f) for f in os.listdir(tlib) if ".so" in f]
    libs.append(next(os.path.join(site, "torch", f) for f in os.listdir(os.path.join(site, "torch"))
                     if f.startswith("_C.") and f.endswith(".so")))
    stub_sonames = set()
    for lib in libs:
        stub_sonames.update(n for n in needed(lib) if n.startswith(STUB_PREFIXES))

    defined = set()
    for lib in libs:
        defined.update(s for s, _ in symbols(lib, undefined=False))
    # Unversioned undefined symbols that no torch lib defines and that look like
    # CUDA libraries' (system libs version their symbols: GLIBC_, GLIBCXX_, ...).
    per_lib = {s: {} for s in stub_sonames}  # soname -> {version: set(sym)}
    loose = set()
    for lib in libs:
        vf = version_files(lib)
        for sym, ver in symbols(lib, undefined=True):
            if sym in defined:
                continue
            if ver:
                so = vf.get(ver)
                if so in per_lib:
                    per_lib[so].setdefault(ver, set()).add(sym)
            elif sym.startswith(LOOSE_PREFIXES):
                loose.add(sym)
    # Unversioned leftovers go into every stub without a version node: any
    # loaded stub satisfies them.
    out_dir = os.path.join(site, "nvidia", "cu13", "lib")
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.environ.get("STUB_TMP", tmp)
        for so, vers in sorted(per_lib.items()):
            c_path = os.path.join(tmp, so + ".c")
            map_path = os.path.join(tmp, so + ".map")
            all_syms = set(loose) if so == "libcudart.so.13" else set()
            for syms in vers.values():
                all_syms |= syms
            with open(c_path, "w") as f:
                f.write("/* generated stub: no CUDA here */\n")
                for sym in sorted(all_syms):
                    f.write(f"int {sym}(void) {{ return 100; }}\n")
            with open(map_path, "w") as f:
                for ver, syms in sorted(vers.items()):
                    f.write(f"{ver} {{ global: {'; '.join(sorted(syms))}; }};\n")
                if so == "libcudart.so.13" or not vers:
                    f.write("STUB_BASE { global: *; };\n")
            target = os.path.join(out_dir, so)
            run("cc", "-shared", "-fPIC", "-O0", "-w", f"-Wl,-soname,{so}",
                f"-Wl,--version-script,{map_path}", "-o", target, c_path)
            n = len(all_syms)
            print(f"stub {so}: {n} symbols, versions {sorted(vers)}")


if __name__ == "__main__":
    main()
