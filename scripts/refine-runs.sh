#!/usr/bin/env bash
# Score every MNIST VAE run of a profile again with refined latents (`bssvae evaluate --refine-steps N
# --write` adds its vaem-refined row; not in the paper; book/results/refinement.md). Runs without
# weights are skipped and named. Used by `make refine` and by scripts/device_sweep.sh.
# Usage: bash scripts/refine-runs.sh PROFILE STEPS PYTHON [--keep-going]
#   PYTHON: the interpreter that has bssvae. --keep-going: a failed run does not stop the others (the
#   exit status still says that one failed).
set -u
usage="usage: refine-runs.sh PROFILE STEPS PYTHON [--keep-going]"
profile=${1:?$usage} steps=${2:?$usage} py=${3:?$usage} keep_going=${4:-}
shopt -s nullglob
runs=(results/"$profile"/runs/mnist-vae-*)
if [ ${#runs[@]} -eq 0 ]; then
  echo "refine-runs: no MNIST VAE runs in results/$profile/runs" >&2
  exit 1
fi
failed=0
for r in "${runs[@]}"; do
  if [ ! -f "$r/model.safetensors" ]; then
    echo "refine-runs: skip $r (no weights)"
    continue
  fi
  echo "== $r"
  if ! "$py" -m bssvae evaluate --run "$r" --refine-steps "$steps" --write; then
    failed=$((failed + 1))
    [ "$keep_going" = --keep-going ] || break
  fi
done
if [ "$failed" -gt 0 ]; then
  echo "refine-runs: $failed run(s) failed" >&2
  exit 1
fi
