#!/usr/bin/env bash
# Run a sweep on the lent GPU machine (no papermill there: --no-notebook) and pack the results into
# $OUT: results-<profile>.tgz (small files of every run) and the weights named in KEEP_WEIGHTS.
# Usage: bash scripts/device_sweep.sh SWEEP_FILE PROFILE JOBS DEADLINE_S [extra sweep args]
set -u
sweep=$1 profile=$2 jobs=$3 deadline=$4; shift 4
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} BSSVAE_COMMIT=${BSSVAE_COMMIT:-unknown} PYTHONPATH=/tmp/site:$PWD BSSVAE_OFFLINE=1 BSSVAE_ROOT=$PWD PYTHONUNBUFFERED=1
touch _toc.yml
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
t0=$(date +%s)
timeout "$deadline" python3 -m bssvae sweep "$sweep" --profile "$profile" --jobs "$jobs" --no-notebook "$@"
echo "sweep exit $? after $(( $(date +%s) - t0 )) s"
nvidia-smi --query-gpu=memory.used --format=csv,noheader
# Latent refinement (not in the paper) needs the weights, which do not come back: score every MNIST VAE
# run here, on the GPU, so that each gets its vaem-refined row (REFINE_STEPS=0 skips it).
if [ "${REFINE_STEPS:-100}" -gt 0 ]; then
  bash scripts/refine-runs.sh "$profile" "${REFINE_STEPS:-100}" python3 --keep-going || echo "refinement did not complete (see above); packing what there is"
fi
tar czf "$OUT/results-$profile.tgz" --exclude='checkpoint*' --exclude=model.safetensors --exclude='*.lock' --exclude='notebooks' "results/$profile"
for w in ${KEEP_WEIGHTS:-}; do
  [ -f "results/$profile/runs/$w/model.safetensors" ] && cp "results/$profile/runs/$w/model.safetensors" "$OUT/$w.safetensors"
done
ls -la "$OUT"
