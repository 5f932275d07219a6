#!/usr/bin/env python3
"""Prefill and decode speed of kvlab against its peers on one GGUF, one prompt.

Engines (``--engines``, comma-separated; ``kvlab`` means both kvlab rows):
  kvlab-quant   target/release/kvlab generate ... --dtype quant   (weights kept quantized)
  kvlab-f32  target/release/kvlab generate ... --dtype f32
  llamacpp   peers/llama.cpp/build/bin/llama-bench
  hf         Hugging Face transformers, f32 weights dequantized from the GGUF

Every engine sees the same model file, a prompt of exactly --n-prompt tokens
(real text tokenized with the GGUF's tokenizer through transformers), produces
--n-gen greedy tokens, and runs on --threads threads. Rounds interleave the
engines (A B C A B C ...) so drift in machine load hits all of them alike;
the table shows medians over rounds.

How each number is measured:
  kvlab     its JSON: prefill tok/s = n_prompt / ttft_ms * 1000,
            decode tok/s = 1000 / tpot_ms.
  llamacpp  llama-bench -p N -n 0 (prefill: pp N at depth 0) and
            -p 0 -n G -d N (decode: tg G after N tokens of context, as for the
            other engines); plus tg G at depth 0 (llama-bench's usual number).
            llama-bench feeds random token ids; the cost of a dense forward
            does not depend on which ids.
  hf        prefill tok/s = N / time of one forward over the prompt (use_cache);
            decode tok/s = G / (time of generate(max_new_tokens=G,
            min_new_tokens=G, do_sample=False) - that prefill time).
            generate makes 1 prefill + G-1 decode forwards, so this slightly
            under-states HF's per-forward decode rate (by 1/G, < 1% at G=128).

Shared machine: before each run the script waits (up to --wait-quiet s) for
no compiler and < --max-foreign of the CPUs busy; during each run it measures
the CPU time other processes took (/proc/stat minus its own rusage). A run
where others took more than --max-foreign of the CPUs, or a compiler was seen,
is marked contended, retried (--retries), and left out of the medians. On 2
cores this matters: OpenMP/spinning thread pools (llama.cpp, torch) slow down
by 10x and more when a third busy process shares the cores.

Several models in one run: --models qwen2.5-coder-0.5b,qwen2.5-coder-1.5b,gemma3-270m
(pins, fetched through `kvlab fetch`, or GGUF paths) benchmarks each in turn on
the same machine and ends with one table of kvlab/llama.cpp ratios; with
llama.cpp among the engines it also runs `llama-simple` (greedy) and
`kvlab generate` on three short prompts and reports where their continuations
first differ.

Output: a table on stdout and a JSON file (--out, default peers/bench/bench.json).
"""
import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

ALL_ENGINES = ["kvlab-quant", "kvlab-f32", "llamacpp", "hf"]
LABELS = {
    "kvlab-quant": "kvlab (quantized, --dtype quant)",
    "kvlab-f32": "kvlab (f32, --dtype f32)",
    "llamacpp": "llama.cpp (llama-bench)",
    "hf": "transformers (f32)",
}


def parse_args():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("gguf_pos", nargs="?", metavar="GGUF", help="same as --gguf")
    p.add_argument("--gguf", default="/work/main/target/models/SmolLM2-135M-Instruct.Q4_1.gguf")
    p.add_argument("--text", default=os.path.join(root, "peers/data/alice29.txt"),
                   help="real text the prompt is cut from (alice29.txt from the Brotli 1.2.1 sdist)")
    p.add_argument("--n-prompt", type=int, default=1024)
    p.add_argument("--n-gen", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--engines", default=",".join(ALL_ENGINES),
                   help="comma-separated subset of " + ",".join(ALL_ENGINES) + " (kvlab = both kvlab rows)")
    p.add_argument("--kvlab-bin", default=os.environ.get("KVLAB_BIN", os.path.join(root, "target/release/kvlab")))
    p.add_argument("--kvlab-args", default="", help="extra flags for `kvlab generate`, one shell-quoted string")
    p.add_argument("--llama-bench", default=os.path.join(root, "peers/llama.cpp/build/bin/llama-bench"))
    p.add_argument("--work-dir", default=os.path.join(root, "peers/bench"),
                   help="where the prompt ids file goes")
    p.add_argument("--out", default=os.path.join(root, "peers/bench/bench.json"))
    p.add_argument("--wait-quiet", type=float, default=600,
                   help="before each run wait up to this many seconds for a quiet machine (0: don't wait)")
    p.add_argument("--max-foreign", type=float, default=0.10,
                   help="a run during which other processes used more than this share of the CPUs "
                        "(or a compiler ran) is contended: retried, and left out of the medians")
    p.add_argument("--retries", type=int, default=3, help="extra tries of a contended run")
    p.add_argument("--models", default="",
                   help="comma-separated pins (kvlab fetch) or GGUF paths, benchmarked in turn")
    p.add_argument("--store", default=os.path.join(root, "artifacts"), help="kvlab store for --models pins")
    p.add_argument("--llama-simple", default=os.path.join(root, "peers/llama.cpp/build/bin/llama-simple"))
    p.add_argument("--agree-tokens", type=int, default=8,
                   help="greedy tokens compared with llama-simple per short prompt (--models runs)")
    a = p.parse_args()
    if a.gguf_pos:
        a.gguf = a.gguf_pos
    names = []
    for e in a.engines.split(","):
        e = e.strip()
        expanded = ["kvlab-quant", "kvlab-f32"] if e == "kvlab" else [e]
        for x in expanded:
            if x not in ALL_ENGINES:
                p.error(f"unknown engine {x!r}; choose from {ALL_ENGINES} or kvlab")
            if x not in names:
                names.append(x)
    a.engine_list = names
    return a


# ----------------------------------------------------------------------------- machine

def machine_info():
    info = {"platform": platform.platform(), "python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
                             "Socket(s)", "Flags"):
                v = v.strip()
                if k.strip() == "Flags":
                    v = " ".join(f for f in v.split() if f.startswith(("avx", "amx", "fma", "f16c")))
                info[k.strip()] = v
    except OSError:
        pass
    info["nproc"] = os.cpu_count()
    return info


def busy_processes():
    """Compilers that would steal our 2 cores (the project's cargo builds)."""
    r = subprocess.run(["pgrep", "-fa", "rustc|cargo build|cargo test|cc1plus"], capture_output=True, text=True)
    me = str(os.getpid())
    return [l.split(None, 1)[1][:80] for l in r.stdout.splitlines()
            if l.split()[0] != me and "pgrep" not in l]


def load1():
    return os.getloadavg()[0]


def cpu_snapshot():
    """(wall s, busy CPU s of the whole machine, CPU s of this process and its children)."""
    import resource
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    busy = (sum(v) - v[3] - v[4]) / hz  # minus idle and iowait
    me = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime
    return time.monotonic(), busy, ours


def foreign_share(a, b):
    """Fraction of the machine's CPUs used by other processes between two snapshots."""
    wall = b[0] - a[0]
    foreign = (b[1] - a[1]) - (b[2] - a[2])
    return max(0.0, foreign) / (wall * (os.cpu_count() or 1)) if wall > 0 else 0.0


# ----------------------------------------------------------------------------- prompt

def build_prompt(gguf, text_path, n_prompt, work_dir):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(os.path.dirname(os.path.abspath(gguf)),
                                        gguf_file=os.path.basename(gguf))
    with open(text_path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if len(ids) < n_prompt:
        sys.exit(f"{text_path}: only {len(ids)} tokens, need {n_prompt}")
    ids = ids[:n_prompt]
    os.makedirs(work_dir, exist_ok=True)
    path = os.path.join(work_dir, f"prompt_ids_{n_prompt}.txt")
    with open(path, "w") as f:  # one id per line
        f.write("\n".join(map(str, ids)) + "\n")
    return tok, ids, path


# ----------------------------------------------------------------------------- engines

class Kvlab:
    def __init__(self, name, a, ids_file, n_prompt):
        self.name, self.a, self.ids_file, self.n_prompt = name, a, ids_file, n_prompt
        self.dtype = name.split("-", 1)[1]
        self.available = os.access(a.kvlab_bin, os.X_OK)
        self.reason = None if self.available else "not built"

    def run(self):
        cmd = [self.a.kvlab_bin, "generate", "--model", self.a.gguf, "--prompt-ids-file", self.ids_file,
               "--max-tokens", str(self.a.n_gen), "--json", "--dtype", self.dtype] + shlex.split(self.a.kvlab_args)
        env = dict(os.environ, RAYON_NUM_THREADS=str(self.a.threads), OMP_NUM_THREADS=str(self.a.threads))
        r = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            raise RuntimeError(f"exit {r.returncode}: {r.stderr.strip()[-400:]}")
        obj = None
        for line in reversed(r.stdout.strip().splitlines()):
            try:
                obj = json.loads(line)
                break
            except ValueError:
                continue
        if obj is None:
            try:
                obj = json.loads(r.stdout)
            except ValueError:
                raise RuntimeError(f"no JSON on stdout: {r.stdout[-300:]!r}")
        n_prompt = len(obj.get("prompt_ids") or []) or self.n_prompt
        res = {
            "prefill_tps": n_prompt / obj["ttft_ms"] * 1000.0,
            "decode_tps": 1000.0 / obj["tpot_ms"],
            "ttft_ms": obj["ttft_ms"], "tpot_ms": obj["tpot_ms"],
            "n_prompt": n_prompt, "n_new": len(obj.get("new_ids") or []),
            "new_ids": obj.get("new_ids"),
        }
        if res["n_prompt"] != self.n_prompt or res["n_new"] != self.a.n_gen:
            res["warning"] = f"kvlab used {res['n_prompt']} prompt / {res['n_new']} new tokens"
        return res


class LlamaCpp:
    def __init__(self, a):
        self.a = a
        self.name = "llamacpp"
        self.available = os.access(a.llama_bench, os.X_OK)
        self.reason = None if self.available else "not built (make peers-llamacpp)"

    def _bench(self, *args):
        cmd = [self.a.llama_bench, "-m", self.a.gguf, "-t", str(self.a.threads), "-r", "1", "-o", "json", *args]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"llama-bench exit {r.returncode}: {r.stderr.strip()[-400:]}")
        return json.loads(r.stdout)

    def run(self):
        n, g = self.a.n_prompt, self.a.n_gen
        # pp N and tg G at depth 0 (llama-bench's standard pair), then tg G after N tokens.
        tests = self._bench("-p", str(n), "-n", str(g)) + self._bench("-p", "0", "-n", str(g), "-d", str(n))
        res = {}
        for t in tests:
            if t["n_prompt"] == n and t["n_gen"] == 0:
                res["prefill_tps"] = t["avg_ts"]
            elif t["n_gen"] == g and t["n_depth"] == 0:
                res["decode_d0_tps"] = t["avg_ts"]
            elif t["n_gen"] == g and t["n_depth"] == n:
                res["decode_tps"] = t["avg_ts"]
        res["build"] = tests[0].get("build_commit"), tests[0].get("cpu_info")
        return res


class HF:
    def __init__(self, a, tok, ids):
        self.a, self.name = a, "hf"
        import torch
        from transformers import AutoModelForCausalLM
        torch.set_num_threads(a.threads)
        self.torch = torch
        d, f = os.path.dirname(os.path.abspath(a.gguf)), os.path.basename(a.gguf)
        t0 = time.perf_counter()
        self.model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32).eval()
        self.load_s = time.perf_counter() - t0
        self.ids = torch.tensor([ids], dtype=torch.long)
        self.pad = tok.eos_token_id
        self.available, self.reason = True, None
        with torch.inference_mode():  # warm-up: first calls pay allocation and kernel selection
            self.model(self.ids[:, :64])
            self._generate(self.ids[:, :64], 4)

    def _generate(self, ids, n):
        return self.model.generate(ids, attention_mask=self.torch.ones_like(ids), max_new_tokens=n,
                                   min_new_tokens=n, do_sample=False, pad_token_id=self.pad)

    def run(self):
        torch, n, g = self.torch, self.a.n_prompt, self.a.n_gen
        with torch.inference_mode():
            t0 = time.perf_counter()
            self.model(self.ids, use_cache=True)
            prefill_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            out = self._generate(self.ids, g)
            gen_s = time.perf_counter() - t0
        new = out[0, n:].tolist()
        return {"prefill_tps": n / prefill_s, "decode_tps": g / (gen_s - prefill_s),
                "prefill_s": prefill_s, "generate_s": gen_s, "n_new": len(new), "new_ids": new}


# ----------------------------------------------------------------------------- report

def fmt(x):
    return "-" if x is None else f"{x:8.1f}"


def median_of(rounds, key):
    vals = [r[key] for r in rounds if key in r]
    return statistics.median(vals) if vals else None


def common_prefix(a, b):
    n = 0
    for x, y in zip(a or [], b or []):
        if x != y:
            break
        n += 1
    return n


def wait_for_quiet(max_wait, threshold):
    """Block until no compiler runs and the machine is < threshold busy over 2 s."""
    t_end = time.time() + max_wait
    while True:
        a = cpu_snapshot()
        time.sleep(2)
        share = foreign_share(a, cpu_snapshot())
        if (share < threshold and not busy_processes()) or time.time() >= t_end:
            return share


def run_engine(eng, a, r):
    """One measurement; retried while other processes took > --max-foreign of the CPUs."""
    attempts = []
    for attempt in range(1 + a.retries):
        if a.wait_quiet > 0:
            wait_for_quiet(a.wait_quiet, a.max_foreign)
        busy_before = busy_processes()
        snap = cpu_snapshot()
        res = eng.run()
        share = foreign_share(snap, cpu_snapshot())
        busy = sorted(set(busy_before + busy_processes()))
        res.update(round=r, attempt=attempt, foreign_cpu_share=share, busy=busy[:5],
                   contended=share > a.max_foreign or bool(busy))
        attempts.append(res)
        tag = "  CONTENDED (%.0f%% of CPUs used by others%s)" % (100 * share, ", compiler running" if busy else "") \
            if res["contended"] else ""
        print(f"  round {r} {eng.name:9s} prefill {res['prefill_tps']:8.1f} tok/s  "
              f"decode {res['decode_tps']:8.1f} tok/s{tag}", flush=True)
        if not res["contended"]:
            break
    return attempts


def bench_one(a, machine):
    """Every engine on a.gguf; returns the report (also written to a.out)."""
    tok, ids, ids_file = build_prompt(a.gguf, a.text, a.n_prompt, a.work_dir)
    print(f"prompt: {len(ids)} tokens of {os.path.basename(a.text)} -> {ids_file}; "
          f"{a.n_gen} greedy tokens; {a.threads} threads; {a.rounds} rounds")

    engines = {}
    for name in a.engine_list:
        if name.startswith("kvlab"):
            engines[name] = Kvlab(name, a, ids_file, a.n_prompt)
        elif name == "llamacpp":
            engines[name] = LlamaCpp(a)
        elif name == "hf":
            engines[name] = HF(a, tok, ids)
            print(f"hf: model loaded in {engines[name].load_s:.1f} s")

    all_runs = {n: [] for n in engines}
    errors = {n: [] for n in engines}
    for r in range(a.rounds):
        for name, eng in engines.items():
            if not eng.available:
                continue
            try:
                all_runs[name] += run_engine(eng, a, r)
            except Exception as exc:  # one bad round should not lose the others
                errors[name].append(f"round {r}: {exc}")
                print(f"  {name} round {r}: ERROR {exc}", file=sys.stderr)
    # Medians over uncontended runs; if an engine has none, over all its runs.
    results = {n: [x for x in rs if not x["contended"]] or rs for n, rs in all_runs.items()}
    quiet = all(not x["contended"] for rs in results.values() for x in rs)
    quiet_log = [{k: x[k] for k in ("round", "attempt", "foreign_cpu_share", "busy", "contended")} | {"engine": n}
                 for n, rs in all_runs.items() for x in rs]

    summary = {}
    for name, eng in engines.items():
        rs = results[name]
        summary[name] = {
            "label": LABELS[name],
            "available": eng.available,
            "status": eng.reason or (("ok" if not any(x["contended"] for x in rs) else "CONTENDED runs only")
                                     if rs else "failed: " + "; ".join(errors[name][-1:])),
            "rounds": len(rs),
            "prefill_tps": median_of(rs, "prefill_tps"),
            "decode_tps": median_of(rs, "decode_tps"),
        }
        if name == "llamacpp":
            summary[name]["decode_d0_tps"] = median_of(rs, "decode_d0_tps")
    ratios = {}
    for k in ("kvlab-quant", "kvlab-f32"):
        for peer in ("llamacpp", "hf"):
            s, p = summary.get(k), summary.get(peer)
            if s and p and s["prefill_tps"] and p["prefill_tps"]:
                ratios[f"{k}/{peer}"] = {"prefill": s["prefill_tps"] / p["prefill_tps"],
                                         "decode": s["decode_tps"] / p["decode_tps"]}
    agreement = {}
    if results.get("hf"):
        ref = results["hf"][0].get("new_ids")
        for k in ("kvlab-quant", "kvlab-f32"):
            if results.get(k):
                agreement[f"{k} vs hf"] = common_prefix(results[k][0].get("new_ids"), ref)

    print()
    print(f"{'engine':32s} {'prefill tok/s':>14s} {'decode tok/s':>13s} {'rounds':>7s}  status")
    for name, s in summary.items():
        status = "not built" if s["status"] == "not built" else s["status"]
        if not s["available"]:
            print(f"{s['label']:32s} {'-':>14s} {'-':>13s} {'-':>7s}  {name.split('-')[0]}: {status}")
            continue
        print(f"{s['label']:32s} {fmt(s['prefill_tps']):>14s} {fmt(s['decode_tps']):>13s} {s['rounds']:7d}  {status}")
    if "llamacpp" in summary and summary["llamacpp"].get("decode_d0_tps"):
        print(f"  llama.cpp decode at depth 0 (llama-bench tg{a.n_gen}): "
              f"{summary['llamacpp']['decode_d0_tps']:.1f} tok/s; the table's decode is tg{a.n_gen} @ d{a.n_prompt}")
    for k, v in ratios.items():
        print(f"ratio {k:22s} prefill {v['prefill']:.2f}x  decode {v['decode']:.2f}x")
    for k, v in agreement.items():
        print(f"greedy agreement {k}: first {v} of {a.n_gen} new tokens identical")
    used = [x for rs in results.values() for x in rs]
    n_cont = sum(x["contended"] for rs in all_runs.values() for x in rs)
    print(f"machine quiet for every run in the medians: {quiet} (max share of CPUs used by other "
          f"processes during a counted run: {100 * max([x['foreign_cpu_share'] for x in used] or [0]):.1f}%; "
          f"{n_cont} contended run(s) discarded and retried)")

    report = {
        "machine": machine, "quiet": quiet, "runs_log": quiet_log,
        "config": {"gguf": a.gguf, "text": a.text, "n_prompt": a.n_prompt, "n_gen": a.n_gen,
                   "threads": a.threads, "rounds": a.rounds, "engines": a.engine_list,
                   "kvlab_bin": a.kvlab_bin, "kvlab_args": a.kvlab_args, "prompt_ids_file": ids_file},
        "summary": summary, "ratios": ratios, "greedy_agreement": agreement,
        "method": __doc__,
        "raw": {n: [{k: v for k, v in r.items() if k != "new_ids"} for r in rs] for n, rs in all_runs.items()},
        "errors": errors,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    with open(a.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {a.out}")
    return report


# Short prompts whose greedy continuations are compared with llama.cpp's.
AGREE_PROMPTS = ["The three primary colors of light are", "The capital of France is", "def fibonacci(n):"]


def agree_with_llamacpp(a, gguf):
    """Greedy continuations of kvlab (quantized) and llama-simple from the same file and text."""
    rows = []
    for prompt in AGREE_PROMPTS:
        r = subprocess.run([a.llama_simple, "-m", gguf, "-n", str(a.agree_tokens), prompt],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"llama-simple exit {r.returncode}: {r.stderr.strip()[-300:]}")
        out = r.stdout
        peer = out[out.index(prompt) + len(prompt):] if prompt in out else out
        env = dict(os.environ, RAYON_NUM_THREADS=str(a.threads))
        k = subprocess.run([a.kvlab_bin, "--store", a.store, "generate", "--model", gguf, "--prompt", prompt,
                            "--max-tokens", str(a.agree_tokens), "--json"], capture_output=True, text=True, env=env)
        if k.returncode != 0:
            raise RuntimeError(f"kvlab generate exit {k.returncode}: {k.stderr.strip()[-300:]}")
        ours = json.loads(k.stdout)["text"]
        n = min(len(ours), len(peer))
        same = next((i for i in range(n) if ours[i] != peer[i]), n)
        rows.append({"prompt": prompt, "kvlab": ours, "llamacpp": peer, "same_chars": same,
                     "identical": ours.rstrip() == peer.rstrip() or ours.startswith(peer) or peer.startswith(ours)})
        print(f"  agree {prompt!r}: kvlab {ours!r} | llama.cpp {peer!r} -> "
              f"{'identical' if rows[-1]['identical'] else f'first {same} chars equal'}", flush=True)
    return rows


def resolve_model(a, name):
    if os.path.isfile(name):
        return name
    r = subprocess.run([a.kvlab_bin, "--store", a.store, "fetch", name], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"kvlab fetch {name}: {r.stderr.strip()}")
    return r.stdout.strip().splitlines()[-1]


def main():
    a = parse_args()
    machine = machine_info()
    print(f"machine: {machine.get('Model name')}, {machine.get('nproc')} CPUs "
          f"({machine.get('Thread(s) per core')} thread/core), {machine.get('Flags', '')}")
    if not a.models:
        bench_one(a, machine)
        return
    out, reports, t0 = a.out, {}, time.time()
    for name in [m.strip() for m in a.models.split(",") if m.strip()]:
        a.gguf = resolve_model(a, name)
        a.out = os.path.join(os.path.dirname(out), f"bench-{os.path.basename(name).replace('.gguf', '')}.json")
        print(f"\n=== {name}: {a.gguf}")
        rep = bench_one(a, machine)
        if "llamacpp" in a.engine_list:
            rep["agreement_llamacpp"] = agree_with_llamacpp(a, a.gguf)
        reports[name] = rep
    print(f"\n{len(reports)} models, {a.n_prompt}-token prompt, {a.n_gen} greedy tokens, {a.threads} threads, "
          f"medians of {a.rounds} rounds; {time.time() - t0:.0f} s in all")
    print(f"| model | kvlab prefill | llama.cpp prefill | ratio | kvlab decode | llama.cpp decode | ratio "
          f"| greedy = llama.cpp |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rep in reports.items():
        s = rep["summary"]
        kq, lc = s.get("kvlab-quant", {}), s.get("llamacpp", {})
        r = rep["ratios"].get("kvlab-quant/llamacpp", {})
        agree = rep.get("agreement_llamacpp", [])
        n_same = sum(x["identical"] for x in agree)

        def f(x, d=1):
            return "-" if x is None else f"{x:.{d}f}"
        print(f"| {name} | {f(kq.get('prefill_tps'))} | {f(lc.get('prefill_tps'))} | {f(r.get('prefill'), 2)}x "
              f"| {f(kq.get('decode_tps'))} | {f(lc.get('decode_tps'))} | {f(r.get('decode'), 2)}x "
              f"| {n_same} of {len(agree)} prompts |")
    with open(out, "w") as fh:
        json.dump({"machine": machine, "models": reports, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, fh, indent=2)
    print(f"wrote {out}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
