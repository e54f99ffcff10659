#!/usr/bin/env bash
# Repeats a short two-thread training in fresh processes and counts the distinct checkpoints (PERFORMANCE.md,
# "Deterministic"). Run it on an otherwise idle machine, from the repository root after a Release build:
#   docs/experiments/two-thread-repeats.sh 120 2     # 120 processes, 2 threads
#   docs/experiments/two-thread-repeats.sh 100 1     # the same on 1 thread
set -euo pipefail
n=${1:-100}; threads=${2:-2}
cli=Vae.Cli/bin/Release/net10.0/Vae.Cli.dll
out=$(mktemp -d)
for i in $(seq 1 "$n"); do
  OMP_NUM_THREADS=$threads MKL_NUM_THREADS=1 dotnet "$cli" train --ntrain 2000 --samples 100 --eval-every 100000 \
    --threads "$threads" --out "$out/run$i" > "$out/run$i.log" 2>&1
  # The checkpoint's metadata holds the SHA-256 of its tensors (parameters, Adagrad's sums, the generator).
  grep -a -o '"vae.sha256":"[0-9a-f]*"' "$out/run$i/checkpoint.safetensors" | cut -c15-30
done | sort | uniq -c
rm -rf "$out"
