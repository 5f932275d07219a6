#!/usr/bin/env python3
"""kvlab on CUDA against transformers on the same card (run by tools/gpu_check.sh).

Per model shape (SmolLM2-135M, Qwen2.5-1.5B, Llama-3.1-8B; random bf16
weights, seeded, small std so logits are sane):

1. writes an HF checkpoint (config.json + safetensors) made with PyTorch;
2. correctness: last-position logits and layer 0 / last-layer K/V of 512
   random ids, kvlab (bf16, CUDA) against transformers bf16 and f32 (and
   kvlab f32 against transformers f32 for the small shapes);
3. speed: prefill of 512 and 4,096 tokens and greedy decode of 256 tokens
   after 512, kvlab and transformers one after the other on the same card;
4. the decode floor: bytes of weights read per token / measured device
   copy bandwidth (read + written, as tools' METHOD says).

Prints a table last; writes results.json and table.md to --out.
The Llama-3.1 shape uses default RoPE (no llama3 scaling: same cost).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import torch

SHAPES = {
    "smollm2-135m": dict(arch="llama", hidden=576, inter=1536, layers=30, heads=9, kv=3,
                         vocab=49152, tie=True, theta=100000.0, eps=1e-5, maxpos=8192),
    "qwen2.5-1.5b": dict(arch="qwen2", hidden=1536, inter=8960, layers=28, heads=12, kv=2,
                         vocab=151936, tie=True, theta=1000000.0, eps=1e-6, maxpos=32768),
    "llama3.1-8b": dict(arch="llama", hidden=4096, inter=14336, layers=32, heads=32, kv=8,
                        vocab=128256, tie=False, theta=500000.0, eps=1e-5, maxpos=131072),
}
CHECK_TOKENS, LONG, DECODE = 512, 4096, 256
TOL = 1e-2  # bf16
T0 = time.time()


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


def make_config(s):
    from transformers import LlamaConfig, Qwen2Config
    cls = Qwen2Config if s["arch"] == "qwen2" else LlamaConfig
    kw = dict(vocab_size=s["vocab"], hidden_size=s["hidden"], intermediate_size=s["inter"],
              num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
              num_key_value_heads=s["kv"], max_position_embeddings=s["maxpos"],
              rms_norm_eps=s["eps"], tie_word_embeddings=s["tie"],
              bos_token_id=1, eos_token_id=2, pad_token_id=0)
    try:  # transformers 5 nests RoPE settings
        cfg = cls(**kw, rope_parameters={"rope_type": "default", "rope_theta": s["theta"]})
    except TypeError:
        cfg = cls(**kw, rope_theta=s["theta"])
    if s["arch"] == "qwen2":
        cfg.use_sliding_window = False
    return cfg


def cast_params(model, dtype):
    """Parameters only: buffers such as RoPE's inv_freq stay f32, as
    transformers keeps them (`model.to(dtype)` would round them too)."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dtype != dtype:
                p.data = p.data.to(dtype)


def make_model(s, seed):
    from transformers import AutoModelForCausalLM
    cfg = make_config(s)
    torch.manual_seed(seed)
    with torch.device("cuda"):
        try:
            model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
        except TypeError:
            model = AutoModelForCausalLM.from_config(cfg, torch_dtype=torch.bfloat16)
    model.to("cuda")  # a no-op unless a version ignored the device above
    cast_params(model, torch.bfloat16)
    g = torch.Generator(device="cuda").manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1 and "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.02, generator=g)
    return model.eval()


def layer_kv(pkv, i):
    """Layer i's K and V [kv_heads, T, head_dim] from a transformers cache."""
    if hasattr(pkv, "layers"):
        return pkv.layers[i].keys[0], pkv.layers[i].values[0]
    if hasattr(pkv, "key_cache"):
        return pkv.key_cache[i][0], pkv.value_cache[i][0]
    return pkv[i][0][0], pkv[i][1][0]


@torch.no_grad()
def reference(model, ids, n_layers):
    out = model(input_ids=ids[None], use_cache=True)
    ref = {"logits": out.logits[0, -1].float().cpu()}
    for i in (0, n_layers - 1):
        k, v = layer_kv(out.past_key_values, i)
        ref[f"k.{i}"], ref[f"v.{i}"] = k.float().cpu(), v.float().cpu()
    return ref


def rel(a, b):
    return float((a - b).norm() / b.norm())


def errors(got, ref):
    return {k: rel(got[k].float(), ref[k]) for k in ref}


def kvlab(bin_, args, timeout=240):
    cmd = [bin_, "forward"] + args
    log("$", " ".join(cmd))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"kvlab exit {p.returncode}: {p.stderr.strip()[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def load_st(path):
    from safetensors.torch import load_file
    return load_file(path)


def cuda_ms(fn, warm=1, reps=3):
    for _ in range(warm):
        fn()
    times = []
    for _ in range(reps):
        torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t) * 1e3)
    return sorted(times)[len(times) // 2]


@torch.no_grad()
def hf_speed(model, ids):
    # Only the last position's logits, as generate's prefill (and kvlab) does.
    kw = {"logits_to_keep": 1}
    try:
        model(input_ids=ids[None, :8], **kw)
    except TypeError:
        kw = {}

    def prefill(n):
        return lambda: model(input_ids=ids[None, :n], use_cache=True, **kw)
    res = {}
    for n in (CHECK_TOKENS, LONG):
        ms = cuda_ms(prefill(n))
        res[f"prefill_{n}"] = n * 1e3 / ms
    prompt = ids[None, :CHECK_TOKENS]

    def gen(k):
        return lambda: model.generate(prompt, max_new_tokens=k, min_new_tokens=k,
                                      do_sample=False, pad_token_id=0)
    gen(4)()  # warm-up
    one = cuda_ms(gen(1), warm=0, reps=1)
    full = cuda_ms(gen(DECODE), warm=0, reps=1)
    res["decode"] = (DECODE - 1) * 1e3 / (full - one)
    return res


def copy_bandwidth():
    """Device copy rate counting bytes read plus bytes written (B/s)."""
    n = 1 << 31
    x = torch.empty(n, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    y.copy_(x)
    reps = 20
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    a.record()
    for _ in range(reps):
        y.copy_(x)
    b.record()
    torch.cuda.synchronize()
    bw = 2 * n * reps / (a.elapsed_time(b) / 1e3)
    del x, y
    return bw


def weight_bytes(model, tied):
    """Bytes of weights a decoded token reads: all of them, but only one
    row of an untied input embedding."""
    n = sum(p.numel() * p.element_size() for p in model.parameters())
    if not tied:
        e = model.get_input_embeddings().weight
        n -= e.numel() * e.element_size()
    return n


def run_shape(name, s, a, bw):
    shm = os.path.isdir("/dev/shm") and shutil.disk_usage("/dev/shm").free > 40e9
    root = "/dev/shm" if shm else a.work  # RAM-backed: writing 16 GB takes seconds
    ck = os.path.join(root, f"kvlab-ck-{name}")
    model = make_model(s, a.seed)
    try:
        model.save_pretrained(ck, safe_serialization=True, max_shard_size="100GB")
    except TypeError:  # safetensors is the only format of later versions
        model.save_pretrained(ck, max_shard_size="100GB")
    log(name, "checkpoint written to", ck)
    gen = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(3, s["vocab"], (LONG,), generator=gen)
    ids_file = os.path.join(a.work, f"ids-{name}.json")
    with open(ids_file, "w") as f:
        json.dump(ids.tolist(), f)
    ids = ids.cuda()
    L = s["layers"]
    ref_bf16 = reference(model, ids[:CHECK_TOKENS], L)
    cast_params(model, torch.float32)
    ref_f32 = reference(model, ids[:CHECK_TOKENS], L)
    cast_params(model, torch.bfloat16)  # exact: the f32 values came from bf16
    torch.cuda.empty_cache()
    dump = os.path.join(a.work, f"kv-{name}-bf16.safetensors")
    kv = kvlab(a.kvlab, ["--model", ck, "--ids", ids_file, "--dtype", "bf16", "--device", "cuda",
                         "--out", dump, "--out-tokens", str(CHECK_TOKENS),
                         "--prefill", f"{CHECK_TOKENS},{LONG}", "--repeat", "3",
                         "--decode", str(DECODE), "--decode-prompt", str(CHECK_TOKENS)])
    got = load_st(dump)
    r = {"shape": name, "kvlab_load_ms": kv["load_ms"],
         "err_vs_hf_bf16": errors(got, ref_bf16), "err_vs_hf_f32": errors(got, ref_f32),
         "hf_bf16_vs_f32": errors(ref_bf16, ref_f32)}
    if s["hidden"] <= 2048:  # an f32 run checks the code path without bf16 noise
        d32 = os.path.join(a.work, f"kv-{name}-f32.safetensors")
        kvlab(a.kvlab, ["--model", ck, "--ids", ids_file, "--dtype", "f32", "--device", "cuda",
                        "--out", d32, "--out-tokens", str(CHECK_TOKENS)])
        r["f32_err_vs_hf_f32"] = errors(load_st(d32), ref_f32)
    ok_direct = max(r["err_vs_hf_bf16"].values()) <= TOL
    hf_noise = max(r["hf_bf16_vs_f32"].values())
    ok_exact = max(r["err_vs_hf_f32"].values()) <= max(TOL, 2 * hf_noise)
    ok_f32 = max(r.get("f32_err_vs_hf_f32", {"-": 0.0}).values()) <= 1e-3
    r["pass"] = bool((ok_direct or ok_exact) and ok_f32)
    kp = {p["tokens"]: p["tok_s"] for p in kv["prefill"]}
    r["kvlab"] = {f"prefill_{CHECK_TOKENS}": kp[CHECK_TOKENS], f"prefill_{LONG}": kp[LONG],
                  "decode": kv["decode"]["tok_s"]}
    log(name, "kvlab", r["kvlab"])
    r["hf"] = hf_speed(model, ids)
    log(name, "transformers", r["hf"])
    wb = weight_bytes(model, s["tie"])
    r["weight_bytes"], r["floor_tok_s"] = wb, bw / wb
    del model
    torch.cuda.empty_cache()
    shutil.rmtree(ck, ignore_errors=True)
    return r


def table(results, card, bw):
    rows = [f"GPU: {card}; torch {torch.__version__}; copy bandwidth {bw / 1e12:.2f} TB/s "
            "(read + written); floor = that / weight bytes per token", "",
            "| shape | check (max rel err vs HF bf16 / f32) | prefill 512 tok/s kvlab / HF (x) "
            "| prefill 4096 tok/s kvlab / HF (x) | decode tok/s kvlab / HF (x) "
            "| decode floor tok/s | kvlab % of floor |",
            "|---|---|---|---|---|---|---|"]
    for r in results:
        if "error" in r:
            rows.append(f"| {r['shape']} | ERROR: {r['error'][:120]} | | | | | |")
            continue
        k, h = r["kvlab"], r["hf"]
        cell = lambda key: f"{k[key]:,.0f} / {h[key]:,.0f} ({k[key] / h[key]:.2f}x)"
        chk = (f"{'pass' if r['pass'] else 'FAIL'} {max(r['err_vs_hf_bf16'].values()):.1e} / "
               f"{max(r['err_vs_hf_f32'].values()):.1e}")
        rows.append(f"| {r['shape']} | {chk} | {cell(f'prefill_{CHECK_TOKENS}')} | "
                    f"{cell(f'prefill_{LONG}')} | {cell('decode')} | {r['floor_tok_s']:,.0f} | "
                    f"{100 * k['decode'] / r['floor_tok_s']:.0f}% |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kvlab", required=True)
    ap.add_argument("--work", default="/tmp/kvlab-gpu")
    ap.add_argument("--out", default="/tmp/kvlab-gpu/out")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--deadline", type=float, default=330.0, help="seconds; later shapes skipped")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    os.makedirs(a.out, exist_ok=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    import transformers
    card = torch.cuda.get_device_name(0)
    log("card", card, "| torch", torch.__version__, "| transformers", transformers.__version__)
    bw = copy_bandwidth()
    log(f"copy bandwidth {bw / 1e12:.2f} TB/s (read + written)")
    results = []
    for name in a.shapes.split(","):
        if time.time() - T0 > a.deadline:
            log("deadline reached; skipping", name)
            continue
        try:
            results.append(run_shape(name, SHAPES[name], a, bw))
        except Exception as e:  # report and go on with the next shape
            log(name, "failed:", repr(e))
            results.append({"shape": name, "error": repr(e)})
            torch.cuda.empty_cache()
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"card": card, "copy_bandwidth": bw, "results": results}, f, indent=1)
    t = table(results, card, bw)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(t + "\n")
    print(json.dumps([{k: r.get(k) for k in ("shape", "pass", "err_vs_hf_bf16",
                                             "err_vs_hf_f32", "f32_err_vs_hf_f32")}
                      for r in results]))
    print(t)
    ok = results and all(r.get("pass") for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
