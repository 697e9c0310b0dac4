#!/usr/bin/env bash
# GPU probe: environment, and epoch times of the paper profile alone and 9 at a time.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD BSSVAE_OFFLINE=1 BSSVAE_ROOT=$PWD PYTHONUNBUFFERED=1
touch _toc.yml
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import torch, skimage, pandas, safetensors, yaml; print(torch.__version__, torch.cuda.get_device_name(0))"
python3 -m bssvae train --profile paper -K 4 --epochs 3 --quiet --run-dir /tmp/probe1 >/dev/null
python3 -c "import pandas as pd; print('alone K4', pd.read_csv('/tmp/probe1/history.csv')[['epoch','train_seconds']].to_string())"
for i in $(seq 1 9); do python3 -m bssvae train --profile paper -K 3 --seed $i --epochs 3 --quiet --run-dir /tmp/probe_p$i >/dev/null & done; wait
python3 -c "
import pandas as pd
for i in range(1,10): print('parallel', i, pd.read_csv(f'/tmp/probe_p{i}/history.csv')['train_seconds'].diff().iloc[-1])"
