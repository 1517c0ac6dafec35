#!/usr/bin/env bash
# Side-by-side `gollm bench` of two commits, run alternately in one go, so
# that a change to the engine loop (or anything on the token path) can be
# judged by ratios rather than by absolute times on a shared machine.
#
#   bench/engine-compare.sh [BASE [ROUNDS]]     (default: HEAD~1, 3 rounds)
#
# Builds BASE and the working tree, synthesizes qwen3-0.6b Q6_K once, then
# runs base, head, base, head, … each with one repetition, and prints each
# figure's median and best for both and head/base.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-HEAD~1}
rounds=${2:-3}
export CGO_ENABLED=0
tmp=$(mktemp -d)
trap 'git worktree remove --force "$tmp/src" 2>/dev/null || true; rm -rf "$tmp"' EXIT
git worktree add -q --detach "$tmp/src" "$base"
(cd "$tmp/src" && go build -o "$tmp/gollm-base" ./cmd/gollm)
go build -o "$tmp/gollm-head" ./cmd/gollm
"$tmp/gollm-head" synth --out "$tmp/m.gguf" --preset qwen3-0.6b --type q6_k >/dev/null
args=(bench --model "$tmp/m.gguf" --threads 2 --pp 128 --tg 64 --seqs 1,2,4,8 --prompt-len 64 --batch-tg 32 --reps 1 --json)
for r in $(seq "$rounds"); do
  for b in base head; do
    "$tmp/gollm-$b" "${args[@]}" | sed "s/^/$b /" >>"$tmp/results"
  done
done
python3 - "$tmp/results" "$(git rev-parse --short "$base")" <<'PY'
import json, statistics, sys
runs = {"base": [], "head": []}
for line in open(sys.argv[1]):
    who, js = line.split(" ", 1)
    runs[who].append(json.loads(js))
def fig(r):
    f = {"pp (tok/s)": r["pp_tokens_per_second"], "tg (tok/s)": r["tg_tokens_per_second"]}
    for b in r["batched"]:
        f["batched x%d (tok/s)" % b["seqs"]] = b["tokens_per_second"]
    return f
# The median is the figure on a quiet machine; on a busy one (other jobs
# compiling on the same cores) runs slow down at random, and the best of
# the runs, each side's ceiling, is the steadier comparison.
print("base = %s, head = working tree; %d alternating runs each" % (sys.argv[2], len(runs["base"])))
print("%-22s %10s %10s %10s %10s %10s %10s" % ("", "base med", "head med", "ratio", "base best", "head best", "ratio"))
for k in fig(runs["base"][0]):
    b = statistics.median(fig(r)[k] for r in runs["base"])
    h = statistics.median(fig(r)[k] for r in runs["head"])
    bb = max(fig(r)[k] for r in runs["base"])
    hb = max(fig(r)[k] for r in runs["head"])
    print("%-22s %10.2f %10.2f %10.3f %10.2f %10.2f %10.3f" % (k, b, h, h / b, bb, hb, hb / bb))
PY
