#!/usr/bin/env bash
# Times a fully cached `kvlab run` (the second `make pipeline`) against the
# bare process start-up of `kvlab --version`, N runs each, interleaved; prints
# medians in milliseconds and their ratio. Run after `make pipeline`.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-21}
PIPELINE=${1:-pipelines/default.toml}
KVLAB=target/release/kvlab
ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
run=(); base=()
for _ in $(seq "$N"); do
  run+=("$(ms "$KVLAB" run "$PIPELINE")")
  base+=("$(ms "$KVLAB" --version)")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mr=$(median "${run[@]}"); mb=$(median "${base[@]}")
if "$KVLAB" run "$PIPELINE" | grep -q '^computed'; then echo "warning: the pipeline was not fully cached" >&2; fi
awk -v r="$mr" -v b="$mb" -v n="$N" 'BEGIN { printf "cached kvlab run: median %.2f ms; kvlab --version: median %.2f ms; ratio %.2f (n=%d)\n", r/1000, b/1000, r/b, n }'
