"""One cpu-profile run with EMA copies of the weights watching it: raw vs EMA at several epochs."""
import sys, json, time, os, copy
import torch
sys.path.insert(0, "/work/main")
from bssvae.config import make_config
from bssvae.data import MnistTask
from bench.ours import OursTrainer
from bench.timing import make_evaluator
from bench.run import parse_value
over = {}
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1); over[k] = parse_value(v)
name = sys.argv[1]
torch.set_num_threads(int(os.environ.get("T", "2")))
cfg = make_config("cpu", "mnist", "vae", 2, **over)
task = MnistTask.build(n_test=5000)
x, s = task.test_set()
ev = make_evaluator(x, s)
tr = OursTrainer(cfg, task, torch.device("cpu"))
decays = [0.99, 0.998, 0.999, 0.9995]
emas = {d: copy.deepcopy(tr.model) for d in decays}
for m in emas.values():
    m.eval()
    for p in m.parameters(): p.requires_grad_(False)
src_p = list(tr.model.parameters()); src_b = list(tr.model.buffers())
marks = set(int(e) for e in os.environ.get("MARKS", "5,10,20,40,60,80,100,110").split(","))
out = []; t_train = 0.0; t_ema = 0.0
spe = tr.steps_per_epoch
it = tr.steps(); step = 0
while True:
    t0 = time.perf_counter()
    try: next(it)
    except StopIteration: break
    t1 = time.perf_counter(); t_train += t1 - t0
    step += 1
    with torch.no_grad():
        for d, m in emas.items():
            torch._foreach_lerp_(list(m.parameters()), src_p, 1 - d)
            for bd, bs in zip(m.buffers(), src_b):
                if bd.dtype.is_floating_point: bd.lerp_(bs, 1 - d)
                else: bd.copy_(bs)
    t_ema += time.perf_counter() - t1
    if step % spe == 0 and (step // spe) in marks:
        ep = step // spe
        row = {"epoch": ep, "train_s": round(t_train, 1), "ema_s": round(t_ema, 1)}
        tr.model.eval(); r = ev(tr.model); tr.model.train()
        row["raw"] = (r["vaem_psnr"], r["vaem_psnr_halved"], r["vae_psnr"])
        for d, m in emas.items():
            r = ev(m); row[str(d)] = (r["vaem_psnr"], r["vaem_psnr_halved"], r["vae_psnr"])
        out.append(row); print(json.dumps(row), flush=True)
        json.dump({"config": cfg.to_dict(), "rows": out}, open(f"/tmp/exp/{name}.json", "w"), indent=1)
