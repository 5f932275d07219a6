#!/usr/bin/env python3
"""Greedy speculative decoding vs plain on a GGUF via `kvlab generate --json`.

usage: tools/spec_bench.py KVLAB GGUF [REPS]
Prints, per prompt and setting, the best-of-REPS decode time per token
(tpot), the speedup over plain, acceptance, mean accepted length, whether
the tokens equal plain's, and the draft-forward / target-step cost ratio.
"""
import json, subprocess, sys

kvlab, gguf = sys.argv[1], sys.argv[2]
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
PROMPTS = {
    "explain": "Explain in a few sentences how a CPU cache works.",
    "repeat": "Here is a list: apples, pears, plums, cherries, grapes, lemons, limes, "
              "melons. Write the list again exactly, twice.",
    "code": "Rewrite this Python function with type hints and the same body:\n"
            "def add_all(xs, ys):\n    out = []\n    for x, y in zip(xs, ys):\n"
            "        out.append(x + y)\n    return out\n",
}
SETTINGS = [
    ("plain", []),
    ("self-spec N=8 g=3", ["--self-spec-layers", "8", "--gamma", "3"]),
    ("self-spec N=24 g=3", ["--self-spec-layers", "24", "--gamma", "3"]),
    ("lookup n=3 g=4", ["--prompt-lookup", "3", "--gamma", "4"]),
    ("lookup n=3 heuristic", ["--prompt-lookup", "3", "--gamma", "4", "--dynamic-gamma", "heuristic"]),
]
extra = sys.argv[4:]
for name, prompt in PROMPTS.items():
    base = None
    for label, flags in SETTINGS:
        best = None
        for _ in range(reps):
            out = subprocess.run([kvlab, "generate", "--model", gguf, "--prompt", prompt, "--chat",
                                  "--max-tokens", "128", "--json", *flags, *extra],
                                 capture_output=True, text=True, check=True)
            v = json.loads(out.stdout)
            dec = (v["tpot_ms"] * (len(v["new_ids"]) - 1))
            if best is None or dec < best[0]:
                best = (dec, v)
        dec, v = best
        n = len(v["new_ids"])
        if base is None:
            base = (dec / max(n - 1, 1), v)
        tpot = dec / max(n - 1, 1)
        line = f"{name:8} {label:22} n={n:3} tpot={tpot:6.1f} ms speedup={base[0] / tpot:4.2f}"
        if "drafted" in v:
            same = v["new_ids"] == base[1]["new_ids"]
            k = 0
            while k < min(n, len(base[1]["new_ids"])) and v["new_ids"][k] == base[1]["new_ids"][k]:
                k += 1
            df = v["draft_forwards"]
            ratio = (v["draft_ms"] / df) / base[0] if df else 0.0
            line += (f" acc={v['acceptance_rate']:.3f} mal={v['mean_accepted_len']:.2f}"
                     f" rounds={v['rounds']} same_as_plain={same} (first {k})"
                     f" draft_fwd/plain_step={ratio:.2f}"
                     f" verify_ms/round={v['verify_ms'] / max(v['rounds'], 1):.1f}")
        print(line, flush=True)
