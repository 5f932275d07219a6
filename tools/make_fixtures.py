#!/usr/bin/env python3
"""Generate the reference fixtures kvlab's Rust engine is tested against.

Run by developers, not by CI; the outputs are committed:

    /work/venv-hf/bin/python tools/make_fixtures.py [--only tiny|smollm2|gemma3]

Versions used to produce the committed files (pinned in
tools/requirements-fixtures.txt): Python 3.11.7, torch 2.15.0 (PyPI wheel,
run on CPU), transformers 5.24.0, safetensors 0.8.0, gguf 0.19.0,
tokenizers 0.23.3, accelerate 1.15.0, numpy 2.4.6.

Outputs
  tests/fixtures/tiny/<name>/{config.json, model.safetensors, golden.safetensors}
      Tiny random checkpoints (float32) of each family, plus HF eager-attention
      goldens: input_ids [T], logits [T, vocab], k.<l>/v.<l> [kv_heads, T,
      head_dim] (keys after RoPE), next_id [1], logits_decode [vocab].
  tests/fixtures/smollm2/greedy.json           32 greedy tokens for 3 prompts
  tests/fixtures/smollm2/first_logits.safetensors   plain prompt logits
  tests/fixtures/smollm2/perplexity.json       alice29.txt, 512-token windows
  tests/fixtures/gemma3/greedy.json            Gemma 3 270M greedy goldens
  tests/fixtures/gemma3/perplexity.json        alice29.txt, 512-token windows, BOS first

Everything is seeded; two runs give identical files on the same versions.
"""

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DynamicCache,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

# With tools/torch_cpu_stubs.py's CUDA stubs (no GPU), torch.cuda's stream
# capture query crashes instead of returning False; transformers asks it on
# every mask. Nothing here runs on CUDA, so answer it ourselves.
if not torch.cuda.is_available():
    import transformers.utils.import_utils as _iu

    _iu.is_cuda_stream_capturing = lambda: False

REPO = Path(__file__).resolve().parent.parent
TINY_DIR = REPO / "tests" / "fixtures" / "tiny"
SMOL_DIR = REPO / "tests" / "fixtures" / "smollm2"
T = 24
SEED = 1234
SMOL_GGUF_DEFAULT = REPO / "target" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
ALICE_SHA256 = "7467306ee0feed4971260f3c87421154a05be571d944e9cb021a5713700c38f0"

COMMON = dict(
    vocab_size=256,
    hidden_size=64,
    intermediate_size=128,
    head_dim=16,
    max_position_embeddings=256,
    rms_norm_eps=1e-5,
    attn_implementation="eager",
)

# name -> (config class, model class, family-specific config)
TINY = {
    "llama_gqa_tied": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
             tie_word_embeddings=True, rope_theta=10000.0),
    ),
    "llama_untied": (
        LlamaConfig,
        LlamaForCausalLM,
        dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
             tie_word_embeddings=False, rope_theta=100000.0),
    ),
    "qwen2_bias": (
        Qwen2Config,
        Qwen2ForCausalLM,
        dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=1,
             tie_word_embeddings=True, rope_theta=10000.0, use_sliding_window=False),
    ),
    "mistral_sliding": (
        MistralConfig,
        MistralForCausalLM,
        dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             tie_word_embeddings=False, rope_theta=10000.0, sliding_window=8),
    ),
    # QK-norm (per-head RMSNorm of q and k before RoPE), no q/k/v bias.
    "qwen3_qknorm": (
        Qwen3Config,
        Qwen3ForCausalLM,
        dict(num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             tie_word_embeddings=False, rope_theta=10000.0, use_sliding_window=False),
    ),
    # Pythia: LayerNorm with bias, fused per-head QKV, partial rotary, GELU.
    "gpt_neox_parallel": (
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        dict(num_hidden_layers=2, num_attention_heads=4, tie_word_embeddings=False,
             use_parallel_residual=True, rotary_pct=0.5, rotary_emb_base=10000),
    ),
    "gpt_neox_serial": (
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        dict(num_hidden_layers=2, num_attention_heads=4, tie_word_embeddings=False,
             use_parallel_residual=False, rotary_pct=0.25, rotary_emb_base=10000),
    ),
    # Local (window 8, base 1e4) and global (base 1e6) layers; the query scale
    # (query_pre_attn_scalar 24) differs from 1/sqrt(head_dim) so a wrong one shows.
    "gemma3_sliding": (
        Gemma3TextConfig,
        Gemma3ForCausalLM,
        dict(num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=1,
             tie_word_embeddings=True, sliding_window=8, query_pre_attn_scalar=24,
             layer_types=["sliding_attention", "full_attention", "sliding_attention"],
             rope_parameters={
                 "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                 "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
             }),
    ),
}


# ---------------------------------------------------------------- tiny models


def randomize(model, gen):
    """Overwrite every parameter with values that make a bug visible.

    HF's default init (std 0.02, norms = 1, biases = 0) gives near-uniform
    attention and zero biases, which would hide RoPE, mask, norm-weight and
    bias mistakes. Weights get std 1/sqrt(fan_in) so attention scores are O(1).
    """
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith(".bias"):
                # LayerNorm biases (Pythia): not the weight's distribution.
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif "norm" in name:
                p.copy_(0.8 + 0.4 * torch.rand(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=gen))
            elif "embed_tokens" in name or "embed_in" in name:
                # Tied heads reuse this as the output matrix: keep logits O(1).
                p.copy_(0.25 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))


def forward(model, ids, cache=None):
    """One eager forward of a 1-D id tensor; returns [len, vocab] logits."""
    with torch.no_grad():
        out = model(input_ids=ids[None], past_key_values=cache, use_cache=cache is not None)
    return out.logits[0].float()


def full_cache(model, ids):
    """Prefill into a plain DynamicCache (keeps every position, even for Mistral)."""
    cache = DynamicCache()
    logits = forward(model, ids, cache)
    return logits, cache


def check_cached_greedy(model, ids, steps=8):
    """Greedy-decode with the cache and compare with a full recompute each step."""
    logits, cache = full_cache(model, ids)
    seq = ids.clone()
    worst = 0.0
    nxt = int(logits[-1].argmax())
    for _ in range(steps):
        seq = torch.cat([seq, torch.tensor([nxt])])
        step = forward(model, seq[-1:], cache)[-1]
        full = forward(model, seq)[-1]
        worst = max(worst, float((step - full).abs().max()))
        a, b = int(step.argmax()), int(full.argmax())
        if a != b:
            raise SystemExit(f"cached greedy {a} != recompute {b}")
        nxt = a
    return worst, seq[len(ids):].tolist()


def check_sliding(cls, model_cls, cfg_kwargs, model, ids):
    """Prove the eager path applies Mistral's window, and which boundary it uses.

    transformers masks with `kv_idx > q_idx - sliding_window` (and kv <= q),
    so a query sees exactly `window` keys including itself. With window W,
    positions 0..W-1 are unaffected and position W is the first to differ
    from full causal attention; an off-by-one (`>=`) would leave W unaffected.
    """
    w = cfg_kwargs["sliding_window"]
    nowin = model_cls(cls(**{**COMMON, **cfg_kwargs, "sliding_window": None}))
    nowin.load_state_dict(model.state_dict())
    nowin.eval()
    a, b = forward(model, ids), forward(nowin, ids)
    same = float((a[:w] - b[:w]).abs().max())
    diff = (a[w:] - b[w:]).abs().amax(dim=1)
    if same > 1e-5 or float(diff[0]) < 1e-4 or float(diff.min()) < 1e-4:
        raise SystemExit(f"sliding window check failed: same={same} diff={diff.tolist()}")
    # HF's default cache for Mistral keeps only the last window-1 positions;
    # decode with it must equal decode with our full cache.
    with torch.no_grad():
        out = model(input_ids=ids[None], use_cache=True)
        default_cache = out.past_key_values
    print(f"    sliding: positions <{w} equal to full attention (max diff {same:.1e}), "
          f"position {w} differs by {float(diff[0]):.3f}; HF default cache keeps "
          f"{default_cache.layers[0].keys.shape[2]} positions")
    return default_cache


def make_tiny(name, out_dir):
    cls, model_cls, extra = TINY[name]
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED + sum(map(ord, name)))
    config = cls(**COMMON, **extra)
    model = model_cls(config)
    randomize(model, gen)
    model.eval()

    ids = torch.randint(0, config.vocab_size, (T,), generator=gen, dtype=torch.int64)
    next_id = torch.randint(0, config.vocab_size, (1,), generator=gen, dtype=torch.int64)

    logits, cache = full_cache(model, ids)
    golden = {"input_ids": ids, "logits": logits.contiguous()}
    for i, layer in enumerate(cache.layers):
        n_kv = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
        assert layer.keys.shape == (1, n_kv, T, config.head_dim)
        golden[f"k.{i}"] = layer.keys[0].float().contiguous()
        golden[f"v.{i}"] = layer.values[0].float().contiguous()
    decode = forward(model, next_id, cache)[-1]
    # Decode must agree with a full recompute of T+1 tokens.
    full = forward(model, torch.cat([ids, next_id]))[-1]
    gap = float((decode - full).abs().max())
    assert gap < 1e-4, f"{name}: decode vs recompute {gap}"
    golden["next_id"] = next_id
    golden["logits_decode"] = decode.contiguous()

    if "bias" in name:
        for i, layer in enumerate(model.model.layers):
            for proj in ("q_proj", "k_proj", "v_proj"):
                assert getattr(layer.self_attn, proj).bias.abs().min() > 0, "zero bias"
    if getattr(config, "sliding_window", None) and cls is MistralConfig:
        default_cache = check_sliding(cls, model_cls, extra, model, ids)
        with torch.no_grad():
            d2 = model(input_ids=next_id[None], past_key_values=default_cache, use_cache=True).logits[0, -1]
        assert float((d2 - decode).abs().max()) < 1e-4, "sliding cache decode mismatch"

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    gc = out_dir / "generation_config.json"
    if gc.exists():
        gc.unlink()
    save_file(golden, str(out_dir / "golden.safetensors"))

    worst, toks = check_cached_greedy(model, ids)
    print(f"  {name}: decode-vs-recompute {gap:.1e}; cached greedy {toks} matches "
          f"recompute (max logit diff {worst:.1e}); logits std {float(logits.std()):.2f}")


def run_tiny(names=None):
    print("tiny checkpoints ->", TINY_DIR)
    for name in names or TINY:
        make_tiny(name, TINY_DIR / name)
    total = sum(f.stat().st_size for f in TINY_DIR.rglob("*") if f.is_file())
    print(f"  total size {total / 1e6:.2f} MB")
    if total > 4_000_000:
        raise SystemExit("tiny fixtures exceed 4 MB")


# ---------------------------------------------------------------- SmolLM2


PROMPTS = [
    ("plain", "The capital of France is", False),
    ("code", "def fibonacci(n):", False),
    ("chat", "What is the KV cache in a transformer? Answer briefly.", True),
]


def load_smollm2(path):
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(
        path.parent, gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    )
    model.eval()
    return tok, model


def prompt_ids(tok, prompt, chat):
    if chat:
        msgs = [{"role": "user", "content": prompt}]
        text = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    else:
        text = prompt
    ids = tok(text, add_special_tokens=True).input_ids
    if chat:
        direct = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=True)
        direct = direct["input_ids"] if isinstance(direct, dict) or hasattr(direct, "keys") else direct
        assert list(direct) == ids, "chat template: text route and token route differ"
    return ids


def greedy(model, ids, n):
    """Greedy decode n tokens with a KV cache; eos does not stop it."""
    cache = DynamicCache()
    logits = forward(model, torch.tensor(ids), cache)
    new = []
    for _ in range(n):
        nxt = int(logits[-1].argmax())
        new.append(nxt)
        logits = forward(model, torch.tensor([nxt]), cache)
    return new


def run_greedy(tok, model):
    eos = tok.eos_token_id
    rows = []
    for name, prompt, chat in PROMPTS:
        ids = prompt_ids(tok, prompt, chat)
        new = greedy(model, ids, 32)
        # Cross-check with transformers' own generate (which stops at eos).
        with torch.no_grad():
            gen = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=32,
                                 eos_token_id=eos, pad_token_id=eos)[0, len(ids):].tolist()
        assert new[: len(gen)] == gen, f"{name}: manual greedy != generate"
        rows.append({
            "name": name,
            "prompt": prompt,
            "chat": chat,
            "prompt_ids": ids,
            "new_ids": new,
            "text": tok.decode(new),
            "eos_id": eos,
            "eos_appeared": eos in new,
            "first_eos_index": new.index(eos) if eos in new else None,
        })
        print(f"  {name}: {len(ids)} prompt ids, eos={eos in new}: {tok.decode(new)!r}")
    SMOL_DIR.mkdir(parents=True, exist_ok=True)
    (SMOL_DIR / "greedy.json").write_text(json.dumps(rows, indent=1, ensure_ascii=False) + "\n")
    meta = {
        "model": "SmolLM2-135M-Instruct.Q4_1.gguf (dequantized to f32 by transformers)",
        "decoding": "greedy argmax with a DynamicCache, 32 new tokens, eos does not stop it",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    (SMOL_DIR / "greedy.meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def run_first_logits(tok, model):
    ids = prompt_ids(tok, PROMPTS[0][1], False)
    logits = forward(model, torch.tensor(ids))[:8]
    top_v, top_i = logits.topk(64, dim=-1)
    save_file(
        {
            "input_ids": torch.tensor(ids, dtype=torch.int64),
            "logits_f16": logits.half().contiguous(),
            "top64_values": top_v.contiguous(),
            "top64_indices": top_i.to(torch.int64).contiguous(),
        },
        str(SMOL_DIR / "first_logits.safetensors"),
        metadata={"note": "logits of the plain prompt, all positions (<=8): full rows as "
                          "float16, plus exact float32 top-64 values/indices per position"},
    )
    print(f"  first_logits: {logits.shape[0]} positions, top1 {top_i[:, 0].tolist()}")


def fetch_alice(cache_dir):
    """alice29.txt from the Brotli==1.2.1 sdist (fetched with pip), sha-checked."""
    dst = cache_dir / "alice29.txt"
    if not dst.exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                            "--no-binary", ":all:", "Brotli==1.2.1", "-d", tmp], check=True)
            sdist = next(Path(tmp).glob("*.tar.gz"))
            with tarfile.open(sdist) as tf:
                member = next(m for m in tf.getmembers()
                              if m.name.endswith("tests/testdata/alice29.txt"))
                data = tf.extractfile(member).read()
        cache_dir.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    data = dst.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != ALICE_SHA256:
        raise SystemExit(f"alice29.txt sha256 {digest} != {ALICE_SHA256}")
    return data, digest


def run_perplexity(tok, model, alice_dir, max_windows, out_dir, model_name, bos, llamacpp_ref):
    """Perplexity of alice29.txt in 512-token windows, kvlab perplexity's
    protocol (src/eval/perplexity.rs): the whole text tokenized once without
    special tokens, cut into non-overlapping windows (partial last one
    dropped), each scored from its own prefix on tokens 1..511. With `bos`
    (models whose GGUF sets tokenizer.ggml.add_bos_token, e.g. Gemma) each
    window's first token is replaced by BOS, as llama.cpp's perplexity does;
    the scored tokens are the same. Writes out_dir/perplexity.json."""
    data, digest = fetch_alice(alice_dir)
    # Bytes decoded as-is: the file is ASCII with CRLF line ends, kept.
    ids = tok(data.decode("utf-8"), add_special_tokens=False).input_ids
    win = 512
    n_windows = len(ids) // win
    if max_windows:
        n_windows = min(n_windows, max_windows)
    nll_windows = []
    total, count, total_half, count_half = 0.0, 0, 0.0, 0
    t0 = time.time()
    for w in range(n_windows):
        chunk = torch.tensor(ids[w * win:(w + 1) * win])
        inp = chunk.clone()
        if bos is not None:
            inp[0] = bos
        logp = torch.log_softmax(forward(model, inp).double(), dim=-1)
        nll = -logp[:-1].gather(1, chunk[1:, None]).squeeze(1)  # predicts tokens 1..511
        nll_windows.append(float(nll.mean()))
        total += float(nll.sum())
        count += nll.numel()
        # llama.cpp's perplexity scores only logits win/2..win-2, i.e. tokens win/2+1..win-1.
        half = nll[win // 2:]
        total_half += float(half.sum())
        count_half += half.numel()
        if w % 10 == 0:
            print(f"  window {w}/{n_windows} nll {nll_windows[-1]:.4f} ({time.time() - t0:.0f}s)")
    mean = total / count
    if bos is None:
        tokenizer = "HF tokenizer from the GGUF, add_special_tokens=False (no BOS)"
    else:
        tokenizer = (f"HF tokenizer from the GGUF, add_special_tokens=False; each window's "
                     f"first token replaced by BOS ({bos}), as llama.cpp's perplexity does")
    doc = {
        "model": model_name,
        "file": "alice29.txt (Brotli==1.2.1 sdist, tests/testdata/alice29.txt)",
        "sha256": digest,
        "tokenizer": tokenizer,
        "bos": bos,
        "n_tokens": len(ids),
        "window": win,
        "stride": win,
        "max_windows": max_windows,
        "n_windows": n_windows,
        "n_predicted": count,
        "mean_nll": mean,
        "ppl_transformers": math.exp(mean),
        "ppl_transformers_second_half": math.exp(total_half / count_half),
        "second_half_note": "only tokens 257..511 of each window scored (255 per window, "
                            "llama.cpp perplexity's convention), to compare with the reference",
        "ppl_llamacpp_reference": llamacpp_ref,
        "nll_per_window": nll_windows,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "seconds": round(time.time() - t0, 1),
    }
    if bos is None:  # the SmolLM2 fixture's keys as first committed
        del doc["model"], doc["bos"], doc["seconds"]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "perplexity.json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"  ppl {doc['ppl_transformers']:.4f} over {count} tokens in {n_windows} windows "
          f"(second halves only: {doc['ppl_transformers_second_half']:.4f}); "
          f"{time.time() - t0:.0f}s")


def run_smollm2(args):
    path = Path(args.gguf or os.environ.get("KVLAB_SMOLLM2_GGUF") or SMOL_GGUF_DEFAULT)
    if not path.exists():
        raise SystemExit(f"SmolLM2 GGUF not found at {path} (set KVLAB_SMOLLM2_GGUF or --gguf)")
    print("SmolLM2 goldens ->", SMOL_DIR)
    tok, model = load_smollm2(path)
    SMOL_DIR.mkdir(parents=True, exist_ok=True)
    run_greedy(tok, model)
    run_first_logits(tok, model)
    if not args.skip_ppl:
        # llama.cpp's figure for this model and file, as first quoted (see BENCHMARKS.md).
        run_perplexity(tok, model, Path(args.alice_cache), args.max_windows, SMOL_DIR,
                       path.name, None, 18.2)


# ---------------------------------------------------------------- Gemma 3 270M

GEMMA_DIR = REPO / "tests" / "fixtures" / "gemma3"


LLAMA_TOKENIZE = REPO / "peers" / "llama.cpp" / "build" / "bin" / "llama-tokenize"


def add_llamacpp_tokenization(tok, gguf, alice_dir, out_json):
    """Adds to perplexity.json how llama.cpp (the reference for a GGUF's
    SentencePiece vocab) tokenizes alice29.txt: its token count and the
    blake3 of its ids as u32 LE (kvlab's ids_blake3), which kvlab's
    `perplexity --json` must reproduce; and where transformers' tokenizer,
    rebuilt from the GGUF's scores, first departs from it (runs of spaces
    split differently), so the windows scored on different ids are known."""
    import blake3
    data, _ = fetch_alice(alice_dir)
    with tempfile.NamedTemporaryFile("wb", suffix=".txt") as f:
        f.write(data)
        f.flush()
        out = subprocess.run([str(LLAMA_TOKENIZE), "-m", str(gguf), "-f", f.name, "--ids",
                              "--no-bos", "--log-disable"], check=True, capture_output=True,
                             text=True).stdout
    ll = [int(x) for x in out.strip().splitlines()[-1].strip("[]").split(",")]
    hf = tok(data.decode("utf-8"), add_special_tokens=False).input_ids
    first = next((i for i, (a, b) in enumerate(zip(hf, ll)) if a != b), min(len(hf), len(ll)))
    doc = json.loads(out_json.read_text())
    win = doc["window"]
    doc.update({
        "llamacpp_tokens": len(ll),
        "llamacpp_ids_blake3": blake3.blake3(b"".join(i.to_bytes(4, "little") for i in ll)).hexdigest(),
        "transformers_tokens": len(hf),
        "transformers_first_different_id": first,
        "windows_on_same_ids": first // win,
        "tokenization_note": "transformers' tokenizer rebuilt from the GGUF splits long runs of "
                             "spaces differently from llama.cpp (and kvlab); windows from "
                             "windows_on_same_ids on are scored on different ids",
    })
    out_json.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"  llama.cpp {len(ll)} ids, transformers {len(hf)}; first difference at {first}")


def run_gemma3(args):
    """Greedy goldens of the pinned gemma-3-270m Q4_K_M GGUF, dequantized to
    f32 by transformers (which also undoes llama.cpp's 1 + w norm shift)."""
    path = Path(args.gemma_gguf or os.environ.get("KVLAB_GEMMA3_GGUF", ""))
    if not path.is_file():
        raise SystemExit("Gemma 3 GGUF not found (set KVLAB_GEMMA3_GGUF or --gemma-gguf)")
    tok, model = load_smollm2(path)
    rows = []
    for name, prompt, _ in PROMPTS[:2]:
        ids = tok(prompt, add_special_tokens=True).input_ids
        logits = forward(model, torch.tensor(ids))
        new = greedy(model, ids, 16)
        rows.append({"name": name, "prompt": prompt, "prompt_ids": ids, "new_ids": new,
                     "text": tok.decode(new),
                     "last_logits_top8": logits[-1].topk(8).indices.tolist(),
                     "last_logits_top8_values": logits[-1].topk(8).values.tolist()})
        print(f"  {name}: {ids} -> {tok.decode(new)!r}")
    GEMMA_DIR.mkdir(parents=True, exist_ok=True)
    doc = {"model": path.name, "transformers": transformers.__version__,
           "decoding": "greedy argmax with a DynamicCache, 16 new tokens", "cases": rows}
    (GEMMA_DIR / "greedy.json").write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    if not args.skip_ppl:
        # The GGUF sets add_bos_token: kvlab puts BOS first in every window.
        bos = tok.bos_token_id
        assert tok("x", add_special_tokens=True).input_ids[0] == bos, "Gemma adds BOS"
        # 15.1: llama.cpp's figure for this model and file (second halves, BOS first).
        run_perplexity(tok, model, Path(args.alice_cache), args.max_windows, GEMMA_DIR,
                       path.name, bos, 15.1)
    if LLAMA_TOKENIZE.is_file():  # built by `make peers-llamacpp`
        add_llamacpp_tokenization(tok, path, Path(args.alice_cache), GEMMA_DIR / "perplexity.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=["tiny", "smollm2", "gemma3"])
    ap.add_argument("--gemma-gguf", help="gemma-3-270m GGUF path (default: $KVLAB_GEMMA3_GGUF)")
    ap.add_argument("--tiny", nargs="*", help="only these tiny fixtures (default: all)")
    ap.add_argument("--gguf", help="SmolLM2 GGUF path (default: $KVLAB_SMOLLM2_GGUF "
                                   "or target/models/SmolLM2-135M-Instruct.Q4_1.gguf)")
    ap.add_argument("--max-windows", type=int, default=0,
                    help="cap the perplexity windows (0 = all complete windows)")
    ap.add_argument("--skip-ppl", action="store_true", help="leave perplexity.json as is")
    ap.add_argument("--alice-cache", default=str(Path(tempfile.gettempdir()) / "kvlab-fixtures"),
                    help="where alice29.txt is kept after the first download")
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, "
          f"threads {torch.get_num_threads()}")
    if args.only in (None, "tiny"):
        run_tiny(args.tiny)
    if args.only in (None, "smollm2"):
        run_smollm2(args)
    if args.only in (None, "gemma3"):
        run_gemma3(args)


if __name__ == "__main__":
    main()
