#!/usr/bin/env python3
"""Rejected-KV recycling on a GGUF via `kvlab generate --json`.

usage: tools/recycle_bench.py KVLAB GGUF [REPS] [extra kvlab flags...]
The model drafts for itself as a second instance with its own cache, which a
StreamingLLM press at ratio 0.5 (re-compressed every 8 positions) shrinks, so
the draft disagrees with the target now and then and there are rejections to
recycle. Per prompt and recycling mode: tokens, best-of-REPS time per token
and tokens/s, acceptance, mean accepted length, draft forwards, draft
forwards saved, target substitutions, and how many leading tokens equal the
run without recycling.
"""
import json, subprocess, sys

kvlab, gguf = sys.argv[1], sys.argv[2]
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 1
extra = sys.argv[4:]
PROMPTS = {
    "explain": "Explain in a few sentences how a CPU cache works.",
    "repeat": "Here is a list: apples, pears, plums, cherries, grapes, lemons, limes, "
              "melons. Write the list again exactly, twice.",
    "code": "Rewrite this Python function with type hints and the same body:\n"
            "def add_all(xs, ys):\n    out = []\n    for x, y in zip(xs, ys):\n"
            "        out.append(x + y)\n    return out\n",
}
BASE = ["--draft", gguf, "--gamma", "4", "--press", "streaming_llm", "--ratio", "0.5",
        "--press-on", "draft", "--press-every", "8"]
MODES = [
    ("off", ["--recycle", "off"]),
    ("draft", ["--recycle", "draft"]),
    ("target L=20", ["--recycle", "target", "--recycle-from-layer", "20"]),
    ("target L=10", ["--recycle", "target", "--recycle-from-layer", "10"]),
    ("both L=20", ["--recycle", "both", "--recycle-from-layer", "20"]),
]


def run(prompt, flags):
    best = None
    for _ in range(reps):
        out = subprocess.run([kvlab, "generate", "--model", gguf, "--prompt", prompt, "--chat",
                              "--max-tokens", "64", "--json", *BASE, *flags, *extra],
                             capture_output=True, text=True, check=True)
        v = json.loads(out.stdout)
        if best is None or v["total_ms"] < best["total_ms"]:
            best = v
    return best


for name, prompt in PROMPTS.items():
    ref = None
    for label, flags in MODES:
        v = run(prompt, flags)
        ids = v["new_ids"]
        ref = ref or ids
        k = 0
        while k < min(len(ids), len(ref)) and ids[k] == ref[k]:
            k += 1
        n = len(ids)
        print(f"{name:8} {label:12} n={n:3} tpot={v['tpot_ms']:6.1f} ms"
              f" tok/s={n * 1e3 / v['total_ms']:5.1f} acc={v['acceptance_rate']:.3f}"
              f" mal={v['mean_accepted_len']:.2f} rounds={v['rounds']}"
              f" draft_fwd={v['draft_forwards']} saved={v['draft_steps_saved']}"
              f" target_recycled={v['target_recycled']} same_as_off={ids == ref} (first {k})",
              flush=True)
