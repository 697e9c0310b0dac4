"""Quick time-to-quality experiments: python exp.py NAME MINUTES key=value ..."""
import sys, json, time, os
import torch
sys.path.insert(0, "/work/main")
from bssvae.config import make_config
from bssvae.data import MnistTask
from bench.ours import OursTrainer
from bench.timing import make_evaluator, timed_run
from bench.run import parse_value
name, minutes = sys.argv[1], float(sys.argv[2])
over = {}
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1); over[k] = parse_value(v)
torch.set_num_threads(int(os.environ.get("T", "1")))
cfg = make_config("cpu", "mnist", "vae", 2, **over)
task = MnistTask.build(n_test=5000)
x, s = task.test_set()
ev = make_evaluator(x[:2000], s[:2000])
tr = OursTrainer(cfg, task, torch.device("cpu"))
pts = [m * 60 for m in (0.5, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30) if m < minutes]
res = timed_run(tr, minutes * 60, pts, ev, torch.device("cpu"), label=name)
res["config"] = cfg.to_dict(); res["history"] = tr.history
json.dump(res, open(f"/tmp/exp/{name}.json", "w"), indent=1)
