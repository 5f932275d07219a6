#!/usr/bin/env python3
"""Reference KV presses from kvpress 0.5.5 on the tiny random Llama fixture.

For a fixed context of 128 token ids, runs each press at each ratio through
kvpress's own forward hooks and dumps, per layer and KV head, the indices it
kept (ascending) and, for score-based presses, the scores it computed. kvlab's
press tests (src/kv/press/parity_tests.rs) compare against these files.

    peers/venv/bin/python tools/press_fixtures.py [--out tests/fixtures/press]

The kept indices are recovered by matching the compressed key rows against the
uncompressed ones (every key row of a random model is distinct), so the dump
does not depend on how a press gathers. AdaKV-style presses keep the whole
cache and mask keys; their kept sets come from `module.masked_key_indices`.
"""

import argparse
import json
import os

import numpy as np
import torch
import kvpress
from kvpress import (
    AdaKVPress,
    CriticalKVPress,
    ExpectedAttentionPress,
    KeyDiffPress,
    KnormPress,
    LagKVPress,
    ObservedAttentionPress,
    PyramidKVPress,
    RandomPress,
    SnapKVPress,
    StreamingLLMPress,
    TOVAPress,
)
from transformers import AutoModelForCausalLM, DynamicCache

MODEL = "tests/fixtures/tiny/llama_gqa_tied"
N_CTX = 128
RATIOS = [0.5, 0.3]


def context_ids():
    # Fixed, reproducible ids that avoid the special ids 0..2.
    return np.random.RandomState(0).randint(3, 256, size=N_CTX).tolist()


def presses(ratio):
    """(fixture name, kvlab press spec, kvpress press, needs eager attention)."""
    r = ratio
    return [
        ("random", {"press": "random", "seed": 0}, RandomPress(r, seed=0), False),
        ("streaming_llm", {"press": "streaming_llm", "n_sink": 4}, StreamingLLMPress(r, n_sink=4), False),
        ("knorm", {"press": "knorm"}, KnormPress(r), False),
        ("snapkv", {"press": "snapkv", "window": 64, "kernel": 5}, SnapKVPress(r, 64, 5), False),
        ("snapkv_w16", {"press": "snapkv", "window": 16, "kernel": 5}, SnapKVPress(r, 16, 5), False),
        ("tova", {"press": "tova"}, TOVAPress(r), False),
        ("observed_attention", {"press": "observed_attention"}, ObservedAttentionPress(r), True),
        ("expected_attention", {"press": "expected_attention"}, ExpectedAttentionPress(r), False),
        ("pyramidkv_w16", {"press": "pyramidkv", "window": 16, "kernel": 5, "beta": 20},
         PyramidKVPress(r, 16, 5, 20), False),
        ("critical_snapkv_w16", {"press": "critical_snapkv", "window": 16, "kernel": 5},
         CriticalKVPress(SnapKVPress(r, 16, 5)), False),
        ("keydiff", {"press": "keydiff"}, KeyDiffPress(r), False),
        ("lagkv_l16", {"press": "lagkv", "n_sink": 4, "lag_size": 16}, LagKVPress(r, 4, 16), False),
        ("adakv_snapkv_w16", {"press": "adakv_snapkv", "window": 16, "kernel": 5},
         AdaKVPress(SnapKVPress(r, 16, 5)), False),
    ]


def match_rows(full, kept):
    """Index into `full` [L, d] of every row of `kept` [n, d] (exact match)."""
    d = (kept[:, None, :] - full[None, :, :]).abs().amax(-1)  # [n, L]
    idx = d.argmin(-1)
    assert torch.all(d.gather(1, idx[:, None]) == 0), "kept row not found in cache"
    return idx.tolist()


def run_press(model, ids, press):
    kept, scores = {}, {}
    base = press.press if isinstance(press, (AdaKVPress, CriticalKVPress)) else press
    if isinstance(press, CriticalKVPress):
        base = press  # its own score() is the final score
    orig_score = base.score

    def score(module, *args, **kw):
        s = orig_score(module, *args, **kw)
        scores[module.layer_idx] = [[float("%.7g" % v) for v in h] for h in s[0].detach().double().tolist()]
        return s

    base.score = score
    orig_compress = press.compress

    def compress(module, hidden_states, keys, values, attentions, kwargs):
        k2, v2 = orig_compress(module, hidden_states, keys, values, attentions, kwargs)
        heads = []
        masked = getattr(module, "masked_key_indices", None)
        for h in range(keys.shape[1]):
            if masked is not None:
                _, hi, si = masked
                drop = set(si[hi == h].tolist())
                heads.append([i for i in range(keys.shape[2]) if i not in drop])
            else:
                heads.append(sorted(match_rows(keys[0, h], k2[0, h])))
        kept[module.layer_idx] = heads
        return k2, v2

    press.compress = compress
    cache = DynamicCache()
    shims = [layer.self_attn.register_forward_pre_hook(_cache_position, with_kwargs=True)
             for layer in model.model.layers]
    try:
        with torch.no_grad(), press(model):
            model(torch.tensor([ids]), past_key_values=cache, use_cache=True)
    finally:
        for s in shims:
            s.remove()
    n = len(kept)
    return [kept[l] for l in range(n)], [scores.get(l) for l in range(n)]


def _cache_position(module, args, kwargs):
    """transformers 5.23 no longer passes `cache_position` to attention layers;
    kvpress 0.5.5 (written for transformers < 5.3) reads it to detect prefill.
    A single prefill from position 0 is all this script runs."""
    if "cache_position" not in kwargs:
        q_len = kwargs["hidden_states"].shape[1]
        kwargs["cache_position"] = torch.arange(q_len)
    return args, kwargs


class FakeTokenizer:
    """The tiny fixture has no tokenizer; KVzip only encodes its repeat prompt
    and the chat-template suffix. One id per character, no chat template."""

    chat_template = None

    def encode(self, text, return_tensors=None, add_special_tokens=False):
        ids = [ord(c) % 250 + 3 for c in text]
        return torch.tensor([ids]) if return_tensors == "pt" else ids


def run_kvzip(model, ids, ratio):
    """KVzipPress(layerwise=True): per layer, the budget pooled over KV heads."""
    from kvpress import KVzipPress
    import kvpress.presses.kvzip_press as kz

    kz.AutoTokenizer.from_pretrained = staticmethod(lambda *a, **k: FakeTokenizer())
    press = KVzipPress(ratio, layerwise=True)
    cache = DynamicCache()
    with torch.no_grad(), press(model):
        model(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True)
    kept = []
    for layer in model.model.layers:
        _, hi, si = layer.self_attn.masked_key_indices
        heads = []
        for h in range(model.config.num_key_value_heads):
            drop = set(si[hi == h].tolist())
            heads.append([i for i in range(len(ids)) if i not in drop])
        kept.append(heads)
        layer.self_attn.masked_key_indices = None
    tok = FakeTokenizer()
    prompt = tok.encode("\n\nRepeat the previous context exactly.") + tok.encode("\n")
    return kept, prompt


def topk_ties():
    """How torch.topk on CPU breaks ties (recorded in the fixture README)."""
    x = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.5, 1.0])
    return {"input": x.tolist(), "k": 2, "indices": x.topk(2).indices.tolist()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/press")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(0)
    ids = context_ids()
    models = {
        impl: AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32, attn_implementation=impl).eval()
        for impl in ("sdpa", "eager")
    }
    for ratio in RATIOS:
        for name, spec, press, eager in presses(ratio):
            model = models["eager" if eager else "sdpa"]
            kept, scores = run_press(model, ids, press)
            out = {
                "kvpress": kvpress.__version__ if hasattr(kvpress, "__version__") else "0.5.5",
                "torch": torch.__version__,
                "model": MODEL,
                "ids": ids,
                "ratio": ratio,
                "spec": spec,
                "kept": kept,
                "scores": scores,
            }
            path = os.path.join(a.out, f"{name}_r{int(round(ratio * 100)):02d}.json")
            with open(path, "w") as f:
                json.dump(out, f, separators=(",", ":"))
            print(path, [len(h) for layer in kept for h in layer])
    kept, prompt = run_kvzip(models["sdpa"], ids, 0.5)
    out = {"model": MODEL, "ids": ids, "ratio": 0.5, "repeat_prompt": prompt,
           "spec": {"press": "kvzip", "n_sink": 4, "layerwise": True}, "kept": kept, "scores": None}
    with open(os.path.join(a.out, "kvzip_r50.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))
    print("kvzip", [len(h) for layer in kept for h in layer])
    with open(os.path.join(a.out, "topk_ties.json"), "w") as f:
        json.dump(topk_ties(), f)
    print("topk ties:", topk_ties())


if __name__ == "__main__":
    main()
