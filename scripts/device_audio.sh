#!/usr/bin/env bash
# Table III on the lent GPU: time the paper audio model, size the sweep's epochs to the call's
# budget, run it, pack the results into $OUT. Usage: bash scripts/device_audio.sh TRAIN_BUDGET_S DEADLINE_S
set -u
budget=$1 deadline=$2
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export OMP_NUM_THREADS=2 BSSVAE_COMMIT=${BSSVAE_COMMIT:-unknown} PYTHONPATH=/tmp/site:$PWD BSSVAE_OFFLINE=1 \
       BSSVAE_ROOT=$PWD BSSVAE_DATA=$PWD/.devdata PYTHONUNBUFFERED=1
touch _toc.yml
epochs=$(python3 - "$budget" <<'PY'
import sys, time, torch
from bssvae.config import make_config
from bssvae.train import build_task
from bssvae.model import VAEBSS
from bssvae.losses import negative_elbo
c = make_config("paper", task="audio")
task = build_task(c, torch.device("cuda"))
model = VAEBSS(c.model).cuda(); opt = torch.optim.Adam(model.parameters(), 1e-4)
g = torch.Generator().manual_seed(0)
def epoch():
    for x in task.epoch_batches(g, c.batch_size):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x)
        loss = negative_elbo(x, out, 0.0).loss
        opt.zero_grad(); loss.backward(); opt.step()
for _ in range(3): epoch()
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(10): epoch()
torch.cuda.synchronize(); per = (time.perf_counter() - t) / 10
# 6 GPU runs (3 VAE + 3 MixIT) share the device; MixIT steps half as often per epoch.
n = int(float(sys.argv[1]) / (per * 4.5))
print(f"epoch {per*1000:.1f} ms alone -> {n} epochs", file=sys.stderr)
print(n)
PY
)
echo "epochs per run: $epochs"
cat > /tmp/audio_sweep.yaml <<YAML
profile: paper
grid:
  - task: audio
    methods: [vae, nmf, mixit]
    n_sources: [2]
    seeds: [0, 1, 2]
    overrides: {epochs: $epochs, beta_warmup_epochs: $((epochs / 4))}
  - task: audio
    methods: [ibm, irm]
    n_sources: [2]
    seeds: [0]
YAML
t0=$(date +%s)
timeout "$deadline" python3 -m bssvae sweep /tmp/audio_sweep.yaml --jobs 11 --no-notebook
echo "sweep exit $? after $(( $(date +%s) - t0 )) s"
tar czf "$OUT/results-audio.tgz" --exclude='checkpoint*' --exclude=model.safetensors --exclude='*.lock' \
    --exclude='notebooks' results/paper/audio.csv results/paper/runs/audio-*
ls -la "$OUT"
