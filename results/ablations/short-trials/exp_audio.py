"""Audio cpu-profile time-to-quality: python exp_audio.py NAME MINUTES key=value ..."""
import sys, json, time, os
import torch
sys.path.insert(0, "/work/main")
from bssvae.config import make_config
from bssvae.audio.task import AudioTask
from bssvae.masks import vaem
from bench.ours import OursTrainer
from bench.timing import timed_run
from bench.run import parse_value
name, minutes = sys.argv[1], float(sys.argv[2])
over = {}
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1); over[k] = parse_value(v)
torch.set_num_threads(int(os.environ.get("T", "2")))
cfg = make_config("cpu", "audio", "vae", 2, **over)
t0 = time.time()
task = AudioTask.build(cfg)
print("task built", time.time() - t0, task.mixtures_per_epoch, flush=True)
x, s = task.test_set()
def ev(model):
    t = time.perf_counter()
    s_hat = model.separate(x, mask=False)
    out = {}
    for m, est in (("vae", s_hat), ("vaem", vaem(s_hat, x.cpu()))):
        sc = task.evaluate(est).summary()
        out[f"{m}_psnr"] = round(sc["si_sdr"], 3)  # named psnr for timed_run's log line
        out[f"{m}_psnr_halved"] = round(sc["sir"], 3)
    out["eval_seconds"] = round(time.perf_counter() - t, 2)
    return out
tr = OursTrainer(cfg, task, torch.device("cpu"))
pts = [m * 60 for m in (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20) if m < minutes]
res = timed_run(tr, minutes * 60, pts, ev, torch.device("cpu"), label=name)
res["config"] = cfg.to_dict(); res["history"] = tr.history
json.dump(res, open(f"/tmp/exp/{name}.json", "w"), indent=1)
