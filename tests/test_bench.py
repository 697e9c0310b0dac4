"""Tests of the benchmark suite (bench/): FLOP counting, the two training loops, scores, bench.json.

They check behaviour, never timings: the machine running them may be busy.
"""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # effective only if torch is not imported yet
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # bench/ is a top-level folder beside the package, not installed
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("BSSVAE_OFFLINE", "1")

from bench import breakdown  # noqa: E402
from bench import report  # noqa: E402
from bench import run as bench_run  # noqa: E402
from bench.authors import AuthorsTrainer, PerItemMnist, split_pairs  # noqa: E402
from bench.flops import MatmulProbe, module_linear_macs, step_flops  # noqa: E402
from bench.ours import OursTrainer  # noqa: E402
from bench.timing import batch_psnr, minutes_to, score_at, timed_run  # noqa: E402
from bssvae.config import ModelConfig, make_config  # noqa: E402
from bssvae.errors import BssvaeError  # noqa: E402
from bssvae.metrics import evaluate_images  # noqa: E402
from bssvae.results import hardware  # noqa: E402
from bssvae.model import VAEBSS  # noqa: E402

TINY = ModelConfig(input_dim=4, hidden_dims=(3,), latent_dim=2, n_sources=2)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One thread for these tests: on a CPU shared with other processes, spinning OpenMP threads can
    slow a step many times over (see bench/__init__.py); the tests check behaviour, not speed.
    ``BSSVAE_THREADS`` makes train() and the suite (which set their own threads) agree."""
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BSSVAE_THREADS", "1")
        torch.set_num_threads(1)
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def smoke_task():
    from bssvae.train import build_task

    return build_task(make_config("smoke", "mnist", "vae", 2), torch.device("cpu"))


# ---------------------------------------------------------------------------------------------
# FLOPs


def test_step_flops_hand_checked_tiny_model():
    # encoder 4x3 + head 3x(2*2*2) = 12 + 24 = 36; decoder 2x3 + 3x4 = 18, applied K = 2 times.
    f = step_flops(TINY)
    assert (f.encoder_macs, f.decoder_macs) == (36, 18)
    assert f.forward_macs == 72
    assert f.train_flops == 6 * 72 - 2 * 4 * 3 == 408  # the first layer's input gradient is not computed
    assert f.inference_flops == 144
    assert module_linear_macs(VAEBSS(TINY), decoder_repeats=2) == 72


def test_step_flops_table_one_mnist_row():
    enc = 784 * 700 + 700 * 600 + 600 * 500 + 500 * 400 + 400 * 300 + 300 * (2 * 3 * 20)
    dec = 20 * 300 + 300 * 400 + 400 * 500 + 500 * 600 + 600 * 700 + 700 * 784
    f = step_flops(ModelConfig.mnist(3))
    assert (f.encoder_macs, f.decoder_macs) == (enc, dec)
    assert f.train_flops == 6 * (enc + 3 * dec) - 2 * 784 * 700
    assert module_linear_macs(VAEBSS(ModelConfig.mnist(3)), decoder_repeats=3) == enc + 3 * dec


def test_step_flops_agree_with_torch_flop_counter():
    """torch's counter sees the executed matrix products: the same count, the first layer's input
    gradient (which autograd skips, the mixtures needing no gradient) left out of both."""
    from torch.utils.flop_counter import FlopCounterMode

    config = ModelConfig.mnist(2)
    model = VAEBSS(config)
    x = torch.rand(8, 784) * 0.5
    with FlopCounterMode(display=False) as counter:
        model(x).x_hat.sum().backward()
    assert counter.get_total_flops() == 8 * step_flops(config).train_flops


def test_step_flops_rejects_non_config():
    with pytest.raises(ValueError, match="config"):
        step_flops({"input_dim": 4})


def test_matmul_probe_records_positive_flops():
    probe = MatmulProbe(torch.device("cpu"), "float32", target_s=0.0, max_n=256)
    probe.sample(1)
    r = probe.result()
    assert r.n == 256 and r.op in MatmulProbe.OPS and r.median > 0
    with pytest.raises(ValueError, match="dtype"):
        MatmulProbe(torch.device("cpu"), "int8")


# ---------------------------------------------------------------------------------------------
# The two loops


def test_per_item_dataset_and_pairing_follow_the_authors():
    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    ds = PerItemMnist(images)
    img, label = ds[3]
    assert img.shape == (1, 28, 28) and img.dtype == torch.float32 and label == 0
    torch.testing.assert_close(img[0], images[3].float() / 255)
    batch = torch.stack([ds[i][0] for i in range(6)])
    x = split_pairs(batch)
    assert x.shape == (3, 784)
    torch.testing.assert_close(x[1], (batch[1].flatten() + batch[4].flatten()) / 2)
    with pytest.raises(ValueError, match="images"):
        PerItemMnist(images.float())


def test_authors_loop_runs_and_lowers_its_loss(smoke_task):
    small = ModelConfig(input_dim=784, hidden_dims=(128, 64), latent_dim=8, n_sources=2)  # fast on a busy CPU
    trainer = AuthorsTrainer(smoke_task.train_images[:1024], small, "cpu", seed=0)
    steps = trainer.steps()
    sizes = [next(steps) for _ in range(24)]  # 16 steps per epoch of 1024 images: crosses an epoch
    assert sizes[0] == 32  # a batch of 64 images gives 32 mixtures
    assert trainer.epoch == 1 and len(trainer.losses) == 1
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.9998)
    first, last = trainer.step_losses[0], sum(trainer.step_losses[-4:]) / 4
    assert last < 0.95 * first


def test_our_loop_refuses_a_model_that_does_not_take_the_task(smoke_task):
    """The suite's trainer checks the model's input size as bssvae.train does (train.check_model_fits)."""
    config = make_config("smoke", "mnist", "vae", 2, device="cpu", model=dict(input_dim=100))
    with pytest.raises(BssvaeError, match=r"model.input_dim: the mnist task has 784 inputs, the model expects 100"):
        OursTrainer(config, smoke_task, torch.device("cpu"))


def test_our_loop_matches_bssvae_train_bit_for_bit(smoke_task, tmp_path):
    """One epoch of bench's loop gives exactly the weights of one epoch of bssvae.train.train."""
    from bssvae.train import load_checkpoint, train

    config = make_config("smoke", "mnist", "vae", 2, device="cpu")
    train(config, tmp_path / "run", task=smoke_task, stop_after_epochs=1, progress=False, write_results=False)
    reference = load_checkpoint(tmp_path / "run")["model"]
    trainer = OursTrainer(config, smoke_task, torch.device("cpu"))
    steps = trainer.steps()
    n_steps = smoke_task.mixtures_per_epoch // config.batch_size
    assert sum(next(steps) for _ in range(n_steps)) == n_steps * config.batch_size
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(value, reference[name]), name


def test_our_loop_spends_its_budget_inside_next_only(smoke_task, monkeypatch):
    """With a budget, the loop counts only the time spent in its steps (the suite evaluates between
    them, clock stopped), ends when that time reaches the budget, and anneals its cosine to it."""
    import dataclasses

    import bench.ours
    from bssvae.train import lr_at

    class Clock:  # 1/64 s per reading (exact sums), whatever the machine's load; advanced by hand below
        now = 0.0

        def perf_counter(self):
            self.now += 2.0 ** -6
            return self.now

    clock = Clock()
    monkeypatch.setattr(bench.ours, "time", clock)
    config = make_config("smoke", "mnist", "vae", 2, device="cpu", epochs=10 ** 4, budget_minutes=0.05)
    trainer = OursTrainer(config, smoke_task, torch.device("cpu"))
    steps = trainer.steps()
    next(steps)
    clock.now += 3.5  # between two next() calls, longer than the 3-s budget: it must not count
    n = 1 + sum(1 for _ in steps)
    assert n > 1 and 3.0 <= trainer.train_seconds < 60.0
    assert trainer.history[-1]["epoch"] == pytest.approx(n / trainer.steps_per_epoch, abs=1e-4)
    assert trainer.opt.param_groups[0]["lr"] < 0.05 * config.lr
    unbudgeted = dataclasses.replace(config, budget_minutes=None)
    assert lr_at(unbudgeted, n, trainer.steps_per_epoch) > 0.99 * config.lr


# ---------------------------------------------------------------------------------------------
# Scores and time-budgeted runs


def test_batch_psnr_equals_the_library_evaluation():
    g = torch.Generator().manual_seed(0)
    sources = torch.rand(20, 2, 784, generator=g) * 0.5
    estimates = (sources.flip(1) + 0.05 * torch.randn(20, 2, 784, generator=g)).clamp(0, 0.5)
    estimates[0] = sources[0]  # an exact estimate: PSNR capped as in bssvae.metrics
    ref = evaluate_images(estimates, sources)
    got = batch_psnr(estimates, sources)
    assert got["psnr"] == pytest.approx(ref.psnr, abs=1e-9)
    assert got["psnr_halved"] == pytest.approx(ref.psnr_halved, abs=1e-9)


class _FakeTrainer:
    """Steps that each take no time and 'improve' a score the evaluator reads."""

    mixtures_per_epoch = 100

    def __init__(self, n_steps):
        self.model, self.n_steps, self.done = None, n_steps, 0

    def steps(self):
        for _ in range(self.n_steps):
            self.done += 1
            yield 10


def test_timed_run_reports_marks_and_finishes_early():
    trainer = _FakeTrainer(n_steps=5)
    evaluate = lambda model: {"vaem_psnr": 10.0 + trainer.done, "vaem_psnr_halved": 16.0 + trainer.done}  # noqa: E731
    run = timed_run(trainer, 60.0, [30.0], evaluate, torch.device("cpu"), log=None)
    assert run["finished"] and run["mixtures"] == 50 and run["epochs_done"] == 0.5
    assert [row["target_s"] for row in run["curve"]] == [0.0, 30.0, 60.0]
    assert score_at(run["curve"], 60.0) == 15.0 and score_at(run["curve"], 45.0) is None
    assert minutes_to(run["curve"], 12.0) is not None and minutes_to(run["curve"], 99.0) is None
    # The untrained model's score does not count as reaching a threshold (a recipe that starts above
    # it and falls below, as the authors' recipe does here, never reached it by training).
    falling = [{"train_seconds": 0.0, "mixtures": 0, "vaem_psnr": 15.0},
               {"train_seconds": 30.0, "mixtures": 900, "vaem_psnr": 14.0},
               {"train_seconds": 60.0, "mixtures": 1800, "vaem_psnr": 14.5}]
    assert minutes_to(falling, 14.2) == 1.0 and minutes_to(falling, 14.9) is None


# ---------------------------------------------------------------------------------------------
# bench.json


def test_merge_keeps_other_devices_and_carries_skipped_sections(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"devices": {
        "cuda:Some GPU": {"throughput_ratio_vs_authors": 9.0},
        "cpu:X (AVX2)": {"measured_at": "earlier", "commit": "abc", "quality": {"ours": {"psnr_after_minutes": {"15": 21.5},
                                                                "minutes_to_db": {"18_7": 2.5, "26_69": None}}}}}}))
    entry = {"measured_at": "now", "throughput": {"ratio_of_medians": 6.0, "matmul_peak_fraction": 0.5}}
    data = bench_run.merge_entry(path, "cpu:X (AVX2)", entry)
    assert json.loads(path.read_text()) == data
    assert data["devices"]["cuda:Some GPU"] == {"throughput_ratio_vs_authors": 9.0}
    cpu = data["devices"]["cpu:X (AVX2)"]
    assert cpu["sections_from_earlier_runs"] == {"quality": {"measured_at": "earlier", "commit": "abc"}}
    assert {k: cpu[k] for k in bench_run.REQUIRED_KEYS} == {
        "throughput_ratio_vs_authors": 6.0, "matmul_peak_fraction": 0.5, "psnr_after_15_min": 21.5,
        "minutes_to_18_7_db": 2.5, "minutes_to_26_69_db": None}
    # Carried a second time, the section keeps the run it was measured in, not the one that carried it.
    again = bench_run.merge_entry(path, "cpu:X (AVX2)", {"measured_at": "later", "commit": "def",
                                                  "throughput": {"ratio_of_medians": 6.0, "matmul_peak_fraction": 0.5}})
    assert again["devices"]["cpu:X (AVX2)"]["sections_from_earlier_runs"] == {"quality": {"measured_at": "earlier",
                                                                                    "commit": "abc"}}
    shown = {**{k: None for k in bench_run.REQUIRED_KEYS}, "settings": {"summary": "s"},
             "sections_from_earlier_runs": again["devices"]["cpu:X (AVX2)"]["sections_from_earlier_runs"]}
    assert "quality: not measured in this run, carried over from earlier (commit abc)" in bench_run.format_table(
        "cpu:X (AVX2)", shown)


def test_cpu_entries_are_keyed_by_the_kind_of_cpu(tmp_path):
    """Two CPUs sold under one name differ in what decides precision and speed; their entries stay apart,
    and a file keyed by the model alone (as the suite wrote it before) is re-keyed from its hardware."""
    avx2 = {"cpu": "AMD EPYC", "cpu_capability": "AVX2", "cpu_flags": ["fma", "avx2"]}
    zen5 = {"cpu": "AMD EPYC", "cpu_capability": "AVX512", "cpu_flags": ["fma", "avx2", "avx512f", "avx512_bf16"]}
    amx = {"cpu": "Intel Xeon", "cpu_capability": "AVX512", "cpu_flags": ["avx512f", "avx512_bf16", "amx_tile",
                                                                          "amx_bf16"]}
    hidden_amx = dict(amx, cpu_flags=["avx512f", "avx512_bf16"])  # the same Xeon in a VM that hides AMX
    assert bench_run.cpu_key(avx2) == "cpu:AMD EPYC (AVX2)"
    assert bench_run.cpu_key(zen5) == "cpu:AMD EPYC (AVX512, AVX512-BF16)"
    assert bench_run.cpu_key(amx) == "cpu:Intel Xeon (AVX512, AMX)"
    assert bench_run.cpu_key(hidden_amx) == "cpu:Intel Xeon (AVX512, AVX512-BF16)"
    assert bench_run.cpu_key({"cpu": "AMD EPYC"}) == "cpu:AMD EPYC (AVX2)"  # recorded no capability
    assert bench_run.device_key(torch.device("cpu")) == bench_run.cpu_key(hardware())
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"devices": {"cpu:AMD EPYC": {"measured_at": "before", "hardware": avx2},
                                            "cuda:GPU": {"kept": True},
                                            # keyed when flags naming any bf16 instructions gave "native bf16"
                                            "cpu:Intel Xeon (AVX512, native bf16)": {"measured_at": "amx",
                                                                                      "hardware": amx}}}))
    assert list(report.load(path)["devices"]) == ["cpu:AMD EPYC (AVX2)", "cuda:GPU", "cpu:Intel Xeon (AVX512, AMX)"]
    data = bench_run.merge_entry(path, "cpu:Intel Xeon (AVX512, AVX512-BF16)",
                                 {"measured_at": "now", "hardware": hidden_amx})
    assert list(data["devices"]) == ["cpu:AMD EPYC (AVX2)", "cuda:GPU", "cpu:Intel Xeon (AVX512, AMX)",
                                     "cpu:Intel Xeon (AVX512, AVX512-BF16)"]  # the AMX entry is not overwritten
    assert data["devices"]["cpu:AMD EPYC (AVX2)"]["measured_at"] == "before"
    assert data["devices"]["cpu:Intel Xeon (AVX512, AMX)"]["measured_at"] == "amx"
    assert "sections_from_earlier_runs" not in data["devices"]["cpu:Intel Xeon (AVX512, AVX512-BF16)"]
    (tmp_path / "results" / "ablations").mkdir(parents=True)  # a kept entry's key is read the same way
    for name, key in (("old", "cpu:AMD EPYC"), ("older", "cpu:AMD EPYC (AVX512, native bf16)")):
        (tmp_path / "results" / "ablations" / f"{name}.json").write_text(json.dumps({"device": key,
                                                                                    "entry": {"hardware": zen5}}))
        assert report.load_ablation(name, root=tmp_path)["device"] == "cpu:AMD EPYC (AVX512, AVX512-BF16)"
    assert bench_run.migrate_key("cuda:GPU", {}) == "cuda:GPU"
    assert bench_run.migrate_key("cpu:X (AVX512, native bf16)", {}) == "cpu:X (AVX512, native bf16)"  # no hardware


def test_a_step_in_two_precisions_is_measured_against_both_peaks():
    """A float32 step with Muon runs its Newton-Schulz products in bfloat16: each precision's products count against
    their own peak, so the fraction stays below 1 where the float32 peak alone would put it above."""
    from bench.flops import flops_fraction, mixed_peak_fraction

    peaks = {"float32": 200e9, "bfloat16": 400e9}
    assert mixed_peak_fraction({"bfloat16": 300e9}, peaks) == pytest.approx(flops_fraction(300e9, 400e9)) == 0.75
    mixed = mixed_peak_fraction({"float32": 100e9, "bfloat16": 160e9}, peaks)
    assert mixed == pytest.approx(0.5 + 0.4) and flops_fraction(260e9, peaks["float32"]) > 1 > mixed
    assert math.isnan(mixed_peak_fraction({"float32": 1e9, "bfloat16": 1e9}, {"float32": 2e9}))
    assert math.isnan(mixed_peak_fraction({}, peaks))


def test_cpu_keys_name_the_family_and_model_where_recorded(tmp_path):
    """Two CPUs of one name, one set of flags and different speeds (two 2-core AMD EPYCs with AVX512-BF16)
    get two entries once the hardware records their family and model; an entry from before keeps its key."""
    from bssvae.results import cpu_id

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n"
                       "model name\t: AMD EPYC\nflags\t\t: fma avx2 avx512f avx512_bf16\n")
    assert cpu_id(cpuinfo) == {"vendor": "AuthenticAMD", "family": 25, "model": 17}
    (tmp_path / "bare").write_text("processor\t: 0\nmodel name\t: some CPU\n")
    assert cpu_id(tmp_path / "bare") is None and cpu_id(tmp_path / "missing") is None
    assert hardware()["cpu_id"] == cpu_id()  # what every run's provenance records
    before = {"cpu": "AMD EPYC", "cpu_capability": "AVX512", "cpu_flags": ["fma", "avx2", "avx512f", "avx512_bf16"]}
    zen4 = dict(before, cpu_id=cpu_id(cpuinfo))
    assert bench_run.cpu_key(zen4) == "cpu:AMD EPYC (AVX512, AVX512-BF16; family 25 model 17)"
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"devices": {"cpu:AMD EPYC (AVX512, AVX512-BF16)": {"measured_at": "before",
                                                                                   "hardware": before}}}))
    data = bench_run.merge_entry(path, bench_run.cpu_key(zen4), {"measured_at": "now", "hardware": zen4})
    assert {k: e["measured_at"] for k, e in data["devices"].items()} == {
        "cpu:AMD EPYC (AVX512, AVX512-BF16)": "before", "cpu:AMD EPYC (AVX512, AVX512-BF16; family 25 model 17)": "now"}


def test_an_unreadable_bench_file_is_moved_aside_not_lost(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text('{"devices": {"cuda:GPU": {"throughput_ratio_vs_authors": 9.0}')  # truncated
    bench_run.merge_entry(path, "cpu:X (AVX2)", {"measured_at": "now"})
    aside = list(tmp_path.glob("bench.json.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_text().startswith('{"devices": {"cuda:GPU"')
    assert list(json.loads(path.read_text())["devices"]) == ["cpu:X (AVX2)"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    out.write_text(json.dumps({"devices": {"cuda:Other": {"kept": True}}}))
    entry = bench_run.run_suite(["--quick", "--device", "cpu", "--skip", "audio", "--set", "precision=fp32",
                                 "--variants", "fp32:64,fp32:64:unfused", "--spin-env", "GOMP_SPINCOUNT=1000",
                                 "--output", str(out)], log=None)
    return out, entry


def test_quick_suite_writes_every_required_key(quick_run):
    out, entry = quick_run
    data = json.loads(out.read_text())
    assert data["devices"]["cuda:Other"] == {"kept": True}
    key = bench_run.device_key(torch.device("cpu"))
    assert data["devices"][key] == entry
    for k in bench_run.REQUIRED_KEYS:
        assert k in entry
    assert entry["throughput_ratio_vs_authors"] > 0 and entry["matmul_peak_fraction"] > 0
    assert entry["psnr_after_15_min"] is None  # no 15-minute budget in the quick version
    assert {"hardware", "versions", "commit", "settings", "inference"} <= set(entry)
    assert entry["settings"]["quick"] and entry["settings"]["our_config"]["precision"] == "fp32"
    for recipe in ("ours", "authors"):
        q = entry["quality"][recipe]
        assert set(q["psnr_after_minutes"]) == {"0.02", "0.04"}
        assert all(v is not None and v > 0 for v in q["psnr_after_minutes"].values())
    assert 10 < entry["quality"]["baseline_half_mixture"]["psnr"] < 20
    # the default: one run per budget, its schedule following its clock (TrainConfig.budget_minutes)
    assert entry["settings"]["ours_runs"] == "budgeted"
    runs = entry["quality"]["ours"]["runs"]
    assert [r["config"]["budget_minutes"] for r in runs] == [r["budget_minutes"] for r in runs]
    assert [r["budget_minutes"] for r in runs] == pytest.approx([0.02, 0.04])


def test_variants_record_the_adam_they_ran(quick_run):
    """Our step uses fused Adam (make_optimizer); an ':unfused' variant must not, and each row says which."""
    _, entry = quick_run
    thr = entry["throughput"]
    assert thr["ours"]["fused_adam"] is True
    assert {v["name"]: v["fused_adam"] for v in thr["variants"]} == {"fp32:64": True, "fp32:64:unfused": False}
    assert {r["optimizer"] for r in (thr["ours"], thr["authors"], *thr["variants"])} == {"adam"}
    assert {r["optimizer_flops_per_step"] for r in (thr["ours"], thr["authors"], *thr["variants"])} == {0}


def test_a_muon_step_counts_its_newton_schulz_products_and_its_unfused_variant_keeps_muon(tmp_path):
    """Where our step uses Muon (the cpu profile's VAE in bf16), its FLOP rate counts Muon's Newton-Schulz products
    per step beside the layers' own, and an ':unfused' variant keeps Muon with an unfused Adam beside it."""
    from bssvae.config import make_config
    from bssvae.model import VAEBSS
    from bssvae.optim import newton_schulz_flops

    entry = bench_run.run_suite(["--quick", "--device", "cpu", "--skip", "quality,inference,audio", "--set",
                                 "precision=fp32", "--set", "optimizer=muon", "--set", "muon_ns_steps=3",
                                 "--variants", "fp32:64:unfused", "--output", str(tmp_path / "bench.json")], log=None)
    thr = entry["throughput"]
    ours, authors, (variant,) = thr["ours"], thr["authors"], thr["variants"]
    steps = newton_schulz_flops(VAEBSS(make_config("cpu", precision="fp32").model), ns_steps=3)
    assert ours["optimizer"] == variant["optimizer"] == "muon (3 iterations)" and authors["optimizer"] == "adam"
    assert ours["optimizer_flops_per_step"] == variant["optimizer_flops_per_step"] == steps > 0
    assert authors["optimizer_flops_per_step"] == 0
    assert ours["fused_adam"] is True and variant["fused_adam"] is False
    layers = thr["flops"]["train_flops_per_mixture"]
    for row in (ours, variant):
        assert row["achieved_flops_per_s"] == pytest.approx(row["mixtures_per_s"] * (layers + steps / row["batch_size"]))
    assert authors["achieved_flops_per_s"] == pytest.approx(authors["mixtures_per_s"] * layers)


def test_spinning_threads_are_timed_in_a_child_that_has_the_variables(quick_run):
    """--spin-env times both loops again in a child process started with the variables (OpenMP reads
    them only at start-up); the child reports what its environment holds, and the ratios are its own."""
    _, entry = quick_run
    thr, sp = entry["throughput"], entry["throughput"]["spinning"]
    assert sp["env"] == {"GOMP_SPINCOUNT": "1000"}
    for name in ("ours", "authors"):
        assert len(sp[name]["samples_mixtures_per_s"]) == thr["repeats"]
        assert all(v > 0 for v in sp[name]["samples_mixtures_per_s"])
    assert sp["ours"]["fused_adam"] is True and sp["ours"]["batch_size"] == thr["ours"]["batch_size"]
    assert sp["ratio_of_medians"] == pytest.approx(sp["ours"]["mixtures_per_s"] / sp["authors"]["mixtures_per_s"])
    assert sp["ours_gain_over_passive"] == pytest.approx(sp["ours"]["mixtures_per_s"] / thr["ours"]["mixtures_per_s"])
    key = bench_run.device_key(torch.device("cpu"))
    assert "threads spinning (GOMP_SPINCOUNT=1000)" in bench_run.format_table(key, entry)


    table = report.throughput_table(entry)
    assert table.loc["authors-style, threads spinning (GOMP_SPINCOUNT=1000)", "vs authors-style"] == 1.0


def test_a_failing_worker_says_why():
    from bench.worker import StepWorker

    config = make_config("smoke", "mnist", "vae", 2, device="cpu")
    expected = r"(?s)bench worker \(BSSVAE_THREADS=two\).*BSSVAE_THREADS: expected an integer, got str 'two'"
    with pytest.raises(BssvaeError, match=expected):
        StepWorker(config, {"BSSVAE_THREADS": "two"}, timeout_s=120)


def test_matmul_flops_from_recorded_shapes():
    assert breakdown.matmul_flops("aten::mm", [[3, 4], [4, 5]]) == 2 * 3 * 4 * 5
    assert breakdown.matmul_flops("aten::addmm", [[5], [3, 4], [4, 5], [], []]) == 2 * 3 * 4 * 5  # bias not counted
    with pytest.raises(BssvaeError, match="aten::mm: expected shapes"):
        breakdown.matmul_flops("aten::mm", [[3, 4], [5, 6]])
    with pytest.raises(BssvaeError, match="op: expected one of"):
        breakdown.matmul_flops("aten::relu", [[3, 4]])


def test_breakdown_share_is_of_the_unprofiled_step():
    """Products take 60 ms of each 100-mixture step; unprofiled, the step runs at 1,000 mixtures/s (100 ms),
    so they are 60 % of it and the step could run at most at 100 / 0.06 mixtures/s; the profiled windows'
    own, slower wall time (120 ms a step) does not enter the share."""
    windows = [{"steps": 2, "mixtures": 200, "wall_seconds": 0.24, "matmul_seconds": 0.12, "matmul_flops": 200 * 7,
                "matmul_by_dtype": {"float32": {"seconds": 0.12, "flops": 200 * 7}},
                "other_seconds": {"aten::add": 0.02, "aten::relu": 0.06}}] * 3
    peaks = {"float32": 1e5, "bfloat16": 5e5}  # the bfloat16 peak is not the step's, and must not enter
    s = breakdown.summarise(windows, train_flops_per_mixture=7, peaks=peaks, mixtures_per_s=1000.0,
                            authors_mixtures_per_s=500.0)
    assert s["matmul_seconds_per_step"] == pytest.approx(0.06) and s["matmul_share"] == pytest.approx(0.6)
    assert s["ceiling_mixtures_per_s"] == pytest.approx(100 / 0.06)
    assert s["ceiling_ratio_vs_authors"] == pytest.approx(100 / 0.06 / 500)
    assert s["matmul_flops_per_s"] == pytest.approx(1400 / 0.12) and s["matmul_peak_fraction"] == pytest.approx(
        1400 / 0.12 / 1e5)
    assert s["matmul_flops_match_analytical_count"] is True
    assert list(s["top_other_ops_seconds_per_step"]) == ["aten::relu", "aten::add"]
    assert s["top_other_ops_seconds_per_step"]["aten::relu"] == pytest.approx(0.03)
    assert s["matmul_peak_dtype"] == "float32" and list(s["matmul_by_dtype"]) == ["float32"]
    assert breakdown.summarise(windows, 8, peaks, 1000.0)["matmul_flops_match_analytical_count"] is False
    with pytest.raises(BssvaeError, match="mixtures_per_s"):
        breakdown.summarise(windows, 7, peaks, 0.0)
    with pytest.raises(BssvaeError, match="no measured peak for float32"):
        breakdown.summarise(windows, 7, {"bfloat16": 5e5}, 1000.0)


def test_breakdown_measures_each_precision_against_its_own_peak():
    """A float32 step with Muon: its layers' products run in float32 (0.1 s, 1,000 FLOPs, at the float32 peak
    of 1e4 FLOP/s) and the Newton-Schulz products in bfloat16 (0.1 s, 2,500 FLOPs, half the bfloat16 peak of
    5e4). At their peaks they would take 0.1 + 0.05 of the 0.2 s they took: 75 %. Measured against the float32
    peak alone, the 17,500 FLOP/s of both would read as 175 %."""
    w = {"steps": 1, "mixtures": 10, "wall_seconds": 0.3, "matmul_seconds": 0.2, "matmul_flops": 3500,
         "matmul_by_dtype": {"float32": {"seconds": 0.1, "flops": 1000}, "bfloat16": {"seconds": 0.1, "flops": 2500}},
         "other_seconds": {}}
    s = breakdown.summarise([w], train_flops_per_mixture=350, peaks={"float32": 1e4, "bfloat16": 5e4},
                            mixtures_per_s=40.0)
    assert s["matmul_flops_per_s"] == pytest.approx(17500)
    assert s["matmul_peak_fraction"] == pytest.approx(0.75)
    assert s["matmul_peak_dtype"] == "bfloat16+float32"
    assert s["matmul_by_dtype"]["float32"]["peak_fraction"] == pytest.approx(1.0)
    assert s["matmul_by_dtype"]["bfloat16"]["peak_fraction"] == pytest.approx(0.5)
    assert s["matmul_by_dtype"]["bfloat16"]["flops_per_mixture"] == pytest.approx(250)
    # in words, for the suite's table and the book; an entry from before the key names its step's precision
    assert report.peak_words({"ours": {"precision": "fp32"}, "step_breakdown": s}) == "bfloat16 and float32 peaks"
    assert report.peak_words({"ours": {"precision": "bf16"}, "step_breakdown": {"matmul_share": 0.5}}) == "bfloat16 peak"
    with pytest.raises(BssvaeError, match="matmul_by_dtype"):
        breakdown.summarise([{k: v for k, v in w.items() if k != "matmul_by_dtype"}], 350, {"float32": 1e4}, 40.0)


def test_matmul_dtype_from_the_profilers_names():
    assert breakdown.matmul_dtype("aten::mm", ["c10::BFloat16", "c10::BFloat16"]) == "bfloat16"
    assert breakdown.matmul_dtype("aten::addmm", ["float", "float", "float", "Scalar", "Scalar"]) == "float32"
    assert breakdown.matmul_dtype("aten::addmm", ["float", "c10::BFloat16", "c10::BFloat16", "Scalar", "Scalar"]) \
        == "bfloat16"  # the bias's dtype does not decide
    with pytest.raises(BssvaeError, match="factors of different dtypes"):
        breakdown.matmul_dtype("aten::mm", ["float", "c10::BFloat16"])
    with pytest.raises(BssvaeError, match="two factors"):
        breakdown.matmul_dtype("aten::mm", [])


def test_profile_window_splits_the_products_by_precision():
    """A real profile of products in both precisions (a bf16 autocast layer, then the same layer in float32, then
    a bfloat16 product as Muon's): each lands under its dtype, with the FLOPs of its shapes."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(32, 16)

    def steps():
        while True:
            x = torch.randn(8, 32)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                lin(x)
            lin(x)
            a = torch.randn(4, 4, dtype=torch.bfloat16)
            a @ a
            yield 8

    w = breakdown.profile_window(steps(), seconds=0.0, min_steps=3)
    assert w["steps"] == 3 and set(w["matmul_by_dtype"]) == {"bfloat16", "float32"}
    assert w["matmul_by_dtype"]["float32"]["flops"] == 3 * 2 * 8 * 32 * 16
    assert w["matmul_by_dtype"]["bfloat16"]["flops"] == 3 * (2 * 8 * 32 * 16 + 2 * 4 * 4 * 4)
    assert w["matmul_flops"] == sum(d["flops"] for d in w["matmul_by_dtype"].values())


def test_breakdown_finds_every_matrix_product_of_our_step(quick_run):
    """The profiled products of our step carry exactly the FLOPs counted from the layer sizes: none is
    missed (or counted twice) under another operator's name."""


    _, entry = quick_run
    br = entry["throughput"]["step_breakdown"]
    assert br["matmul_flops_match_analytical_count"] is True
    assert br["matmul_flops_per_mixture"] == entry["throughput"]["flops"]["train_flops_per_mixture"]
    # the quick run's step is float32 with Adam: every product in float32, against the float32 peak
    assert br["matmul_peak_dtype"] == "float32"
    assert br["matmul_peak_fraction"] == pytest.approx(
        br["matmul_by_dtype"]["float32"]["flops_per_s"] / entry["throughput"]["matmul_peak"]["float32"]["max_flops_per_s"])
    assert br["matmul_share"] > 0 and br["ceiling_mixtures_per_s"] > 0 and br["steps"] >= 3 * br["windows"]
    assert br["windows"] == entry["throughput"]["repeats"]
    t = report.breakdown_table(entry)
    assert t.index[0].startswith("matrix products") and t.index[-1].startswith("everything else")
    assert t["ms per step"].sum() == pytest.approx(1e3 * br["profiled_step_seconds"], abs=0.01 * len(t))
    assert "matrix products: share of our step's time" in bench_run.format_table("cpu:X (AVX2)", entry)


def test_book_tables_read_the_written_file(quick_run, tmp_path):
    out, entry = quick_run
    data = report.load(out)
    assert set(report.summary_table(data).index) == {"cuda:Other", bench_run.device_key(torch.device("cpu"))}
    t = report.throughput_table(entry)
    assert list(t.index[:2]) == ["ours (profile)", "authors-style (per-item DataLoader)"]
    assert t.loc["ours (profile)", "mixtures/s (median)"] == round(entry["throughput"]["ours"]["mixtures_per_s"])
    q = report.quality_table(entry)
    assert list(q.index) == ["ours", "authors"]
    md = report.markdown(q)
    assert md.splitlines()[0].startswith("| recipe | PSNR after 0.02 min")
    assert report.load(tmp_path / "absent.json") is None
    assert report.slug("cuda:NVIDIA H100 80GB") == "cuda-nvidia-h100-80gb"


def test_markdown_gives_the_columns_asked_a_fixed_number_of_decimals():
    t = pd.DataFrame({"ssim": [0.891, 0.9], "psnr": [20.81, float("nan")], "n": [1, 2], "value": [0.762, 26.8]},
                     index=pd.Index(["a", "b"], name="run"))
    md = report.markdown(t, decimals={"ssim": 3}).splitlines()
    assert md[0] == "| run | ssim | psnr | n | value |"
    assert md[2] == "| a | 0.891 | 20.81 | 1 | 0.762 |"
    assert md[3] == "| b | 0.900 |  | 2 | 26.8 |"  # 0.9 to 3 places; the other columns as they are
    assert report.markdown(t).splitlines()[3] == "| b | 0.9 |  | 2 | 26.8 |"
    with pytest.raises(KeyError, match="no column lr"):
        report.markdown(t, decimals={"lr": 4})


def test_recipe_curves_compare_at_marks(tmp_path):
    def entry(psnrs):
        curve = [{"target_s": 60.0 * i, "train_seconds": 60.0 * i + 0.3, "epoch": i, "vaem_psnr": p,
                  "vaem_psnr_halved": p + 6.0}
                 for i, p in enumerate(psnrs)]
        return {"quality": {"ours": {"runs": [{"budget_minutes": 1, "curve": curve[:2]},
                                              {"budget_minutes": 5, "curve": curve}]}}}

    a = report.recipe_curve(entry([14.0, 15.0, 16.0, 17.0, 18.0, 19.0]))
    assert list(a["target_s"]) == [0, 60, 120, 180, 240, 300] and a["psnr_halved"].iloc[-1] == 25.0  # longest run
    b = report.recipe_curve(entry([14.0, 14.5, 14.6]))  # stops after 2 minutes
    t = report.compare_curves({"a": a, "b": b}, marks_minutes=(1, 5))
    assert t.loc["a", "after 1 min"] == "15.00 / 21.00" and t.loc["a", "after 5 min"] == "19.00 / 25.00"
    assert pd.isna(t.loc["b", "after 5 min"])  # never trained that long: no value, not its last one
    assert report.recipe_curve({}).empty
    (tmp_path / "results" / "ablations").mkdir(parents=True)
    (tmp_path / "bssvae").mkdir()
    (tmp_path / "results" / "ablations" / "x.json").write_text('{"device": "cpu:X (AVX2)", "entry": {}}')
    assert report.load_ablation("x", root=tmp_path)["device"] == "cpu:X (AVX2)"
    assert report.load_ablation("absent", root=tmp_path) is None
    assert report.fp32_peak({}) is None
    assert report.fp32_peak({"throughput": {"matmul_peak": {"float32": {"max_flops_per_s": 1.5e11}}}}) == 1.5e11
    assert report.ema_table("absent", root=tmp_path).empty
    (tmp_path / "results" / "ablations" / "e").mkdir()
    (tmp_path / "results" / "ablations" / "e" / "ema.json").write_text(json.dumps({"rows": [
        {"epoch": 5, "train_s": 30.0, "ema_s": 1.0, "raw": [16.0, 22.0, 14.0], "0.999": [15.5, 21.5, 13.0]}]}))
    t = report.ema_table("e", root=tmp_path)
    assert t.loc[5, "raw weights"] == "16.00 / 22.00" and t.loc[5, "EMA 0.999"] == "15.50 / 21.50"
    assert t.loc[5, "train minutes"] == 0.5
    assert report.spin_table(root=tmp_path)[0].empty
    (tmp_path / "results" / "ablations" / "omp-spin").mkdir()
    medians = {"idle | passive": {"ours": 2000.0, "authors": 500.0, "ours_over_authors": 4.0},
               "idle | spin 10000": {"ours": 2400.0, "authors": 750.0, "ours_over_authors": 3.2},
               "one busy process | passive": {"ours": 1000.0, "authors": 400.0, "ours_over_authors": 2.5},
               "one busy process | spin 10000": {"ours": 500.0, "authors": 100.0, "ours_over_authors": 5.0}}
    (tmp_path / "results" / "ablations" / "omp-spin" / "spin.json").write_text(json.dumps(
        {"medians_mixtures_per_s": medians, "provenance": {"commit": "abc"}}))
    t, prov = report.spin_table(root=tmp_path)
    assert prov == {"commit": "abc"}
    assert t.loc[("idle", "spin 10000"), "ours vs passive"] == 1.2  # against passive under the same load
    assert t.loc[("one busy process", "spin 10000"), "authors vs passive"] == 0.25
    assert t.loc[("one busy process", "passive"), "ours / authors"] == 2.5
    md = report.markdown(t)  # one column per index level, not tuples
    assert md.splitlines()[0].startswith("| machine | OpenMP threads at a barrier | ours (mixtures/s) |")
    assert "| idle | spin 10000 | 2400 | 750 |" in md
    assert report.spin_table(root=tmp_path, name="spin-other.json")[0].empty  # one file per machine, by name
    assert report.concurrency_table(root=tmp_path)[0].empty
    (tmp_path / "results" / "ablations" / "sweep-concurrency").mkdir()
    (tmp_path / "results" / "ablations" / "sweep-concurrency" / "concurrency.json").write_text(json.dumps(
        {"medians_mixtures_per_s": {"1 run x 2 threads, spinning": 5000.0, "1 run x 2 threads, passive": 4000.0,
                                    "2 runs x 1 thread, at once": 6000.0}, "provenance": {"commit": "abc"}}))
    t, prov = report.concurrency_table(root=tmp_path)
    assert prov == {"commit": "abc"} and list(t.index)[-1] == "2 runs x 1 thread, at once"  # slowest first
    assert t.loc["2 runs x 1 thread, at once", "vs one run, spinning"] == 1.2
    assert t.loc["2 runs x 1 thread, at once", "vs one run, passive"] == 1.5
    assert report.parity_table(root=tmp_path)[0].empty
    (tmp_path / "results" / "ablations" / "bf16-cpu").mkdir()
    row = dict(seed=0, epochs=17, ssim=0.77, ssim_halved=0.79)
    (tmp_path / "results" / "ablations" / "bf16-cpu" / "parity.json").write_text(json.dumps({
        "rows": [{**row, "precision": "fp32", "method": "vaem", "psnr": 17.6, "psnr_halved": 23.6, "train_seconds": 180.0},
                 {**row, "precision": "bf16", "method": "vaem", "psnr": 17.65, "psnr_halved": 23.65, "train_seconds": 90.0}],
        "bf16_minus_fp32": [{"seed": 0, "method": "vaem", "psnr_bf16_minus_fp32": 0.05, "speedup": 2.0}],
        "commit": "abc"}))
    t, prov = report.parity_table(root=tmp_path)
    assert prov == {"bf16_minus_fp32": [{"seed": 0, "method": "vaem", "psnr_bf16_minus_fp32": 0.05, "speedup": 2.0}],
                    "commit": "abc"}
    assert t.loc[(0, "VAEM"), "PSNR fp32 (dB)"] == "17.60 / 23.60" and t.loc[(0, "VAEM"), "bf16 - fp32 (dB)"] == 0.05
    assert t.loc[(0, "VAEM"), "training minutes fp32 / bf16"] == "3.0 / 1.5" and t.loc[(0, "VAEM"), "bf16 speed-up"] == 2.0
    assert report.trials_table("trials", root=tmp_path).empty
    (tmp_path / "results" / "ablations" / "trials").mkdir()
    for batch, psnr, reached in ((512, 18.74, 2.5), (256, 18.49, None)):
        entry = {"commit": "cfad499e8e", "settings": {"our_config": {"batch_size": batch, "lr": batch * 4e-6,
                                                                     "precision": "bf16"}},
                 "quality": {"ours": {"runs": [{"budget_minutes": 3.0, "epochs_done": 40.9, "epochs_planned": 41,
                                                "mixtures": 1_227_000, "train_seconds": 180.0}],
                                      "psnr_after_minutes": {"3": psnr}, "psnr_halved_after_minutes": {"3": psnr + 6},
                                      "minutes_to_db": {"18_7": reached, "26_69": None}}}}
        (tmp_path / "results" / "ablations" / "trials" / f"b{batch}.json").write_text(
            json.dumps({"devices": {"cpu:X (AVX512, native bf16)": entry}}))
    (tmp_path / "results" / "ablations" / "trials" / "broken.json").write_text("{")
    t = report.trials_table("trials", root=tmp_path)
    assert list(t.index) == ["b256.json", "b512.json"]  # by budget, then batch; the unreadable file left out
    assert t.loc["b512.json", "VAEM PSNR at the budget (dB)"] == "18.74 / 24.74"
    assert t.loc["b512.json", "minutes to 18.7 dB"] == 2.5 and pd.isna(t.loc["b256.json", "minutes to 18.7 dB"])
    assert t.loc["b256.json", "mixtures/s"] == 6817 and t.loc["b256.json", "commit"] == "cfad499"
    assert t.loc["b256.json", "threads wait"] == "OpenMP's default"  # no waiting recorded in its settings
    suite = dict(entry, commit="0123456789", settings={"our_config": {"batch_size": 1024, "lr": 4e-3, "precision": "fp32"}})
    t = report.trials_table("trials", root=tmp_path, extra={"results/bench.json": suite, "no quality": {"commit": "x"}})
    assert list(t.index) == ["b256.json", "b512.json", "results/bench.json"]  # an entry without runs adds none
    assert t.loc["results/bench.json", "commit"] == "0123456" and t.loc["results/bench.json", "precision"] == "fp32"
    assert report.trials_table("absent", root=tmp_path, extra={"results/bench.json": suite}).empty  # no trials
    assert report.suite_files(None, root=tmp_path) == []
    assert report.trial_scores(None, root=tmp_path, extra={"results/bench.json": suite})["file"].tolist() == [
        "results/bench.json"]  # only the entries given
    assert "schedule" not in t.columns  # every file without one: nothing to tell apart
    assert set(report.trial_scores("trials", root=tmp_path)["schedule"]) == {"not recorded"}
    linear = dict(entry, settings={"our_config": {"batch_size": 512, "lr": 2e-3, "precision": "bf16",
                                                  "lr_schedule": "linear"}})
    cosine = dict(linear, settings={"our_config": {**linear["settings"]["our_config"], "lr_schedule": "cosine"}})
    (tmp_path / "results" / "ablations" / "trials" / "linear.json").write_text(json.dumps({"devices": {"cpu:X": linear}}))
    t = report.trials_table("trials", root=tmp_path, extra={"cosine": cosine})
    assert t["schedule"].to_dict() == {"b256.json": "not recorded", "b512.json": "not recorded",
                                       "linear.json": "linear", "cosine": "cosine"}


def test_threads_wait_names_how_a_suite_entrys_threads_waited():
    assert report.threads_wait({"omp_wait_policy": "PASSIVE", "gomp_spincount": None}) == "passive"
    assert report.threads_wait({"omp_wait_policy": "PASSIVE", "gomp_spincount": "300000"}) == "spin 300000"  # it wins
    assert report.threads_wait({}) == "OpenMP's default"


def test_schedule_table_puts_the_schedules_of_each_seed_side_by_side(tmp_path):
    root = tmp_path / "results" / "ablations" / "lr-schedule"
    runs = {("cosine", 0): 18.1, ("constant", 0): 18.3, ("cosine", 1): 18.2, ("constant", 1): 18.5,
            ("constant", 2): 18.4}  # seed 2 has no cosine run: shown, but left out of the mean
    for (schedule, seed), psnr in runs.items():
        d = root / f"e30-{schedule}-seed{seed}"
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"config": {"epochs": 30, "lr": 1e-3, "lr_schedule": schedule,
                                                              "seed": seed}}))
        (d / "metrics.json").write_text(json.dumps({"rows": [
            {"method": "vae", "psnr": 1.0}, {"method": "vaem", "psnr": psnr, "psnr_halved": psnr + 6.0, "ssim": 0.8,
                                             "train_seconds": 300.0}]}))
    (root / "unfinished").mkdir()
    (root / "unfinished" / "config.json").write_text("{}")  # no metrics.json: left out
    trials = report.schedule_trials(root=tmp_path)
    assert len(trials) == 5 and set(trials["schedule"]) == {"cosine", "constant"}
    t = report.schedule_table(trials)
    assert list(t.columns) == ["cosine (dB)", "constant (dB)", "constant - cosine (dB)"]  # the base first
    assert t.loc[(30, 1e-3, 0), "constant (dB)"] == "18.30 / 24.30"
    assert t.loc[(30, 1e-3, 1), "constant - cosine (dB)"] == 0.3
    assert t.loc[(30, 1e-3, 2), "cosine (dB)"] == "" and pd.isna(t.loc[(30, 1e-3, 2), "constant - cosine (dB)"])
    assert t.loc[(30, 1e-3, "mean"), "constant - cosine (dB)"] == 0.25  # seeds 0 and 1 only
    assert report.schedule_table(report.schedule_trials("absent", root=tmp_path)).empty


def test_long_run_table_reads_each_run_at_its_marks():
    def run(budget, psnrs, **extra):
        curve = [{"target_s": 60.0 * i, "train_seconds": 60.0 * i + 0.5, "epoch": 2.0 * i, "mixtures": 1000 * i,
                  "vaem_psnr": p, "vaem_psnr_halved": p + 6.0} for i, p in enumerate(psnrs)]
        return {"budget_minutes": budget, "curve": curve, **extra}

    entry = {"quality": {"ours": {"runs": [run(3, [14.9, 18.0, 18.8, 19.0], epochs_planned=6)]},
                         "authors": {"runs": [run(3, [20.0, 14.0, 15.0, 14.5])]}}}
    t = report.long_run_table(entry, marks_minutes=(1, 3, 5))
    assert list(t.index) == ["ours, 3-min run", "authors, 3-min run"]
    ours, authors = t.loc["ours, 3-min run"], t.loc["authors, 3-min run"]
    assert ours["after 1 min"] == "18.00 / 24.00" and ours["after 3 min"] == "19.00 / 25.00"
    assert pd.isna(ours["after 5 min"])  # never trained that long
    assert ours["epochs trained"] == "6.0 of 6" and authors["epochs trained"] == "6.0"
    assert ours["best (dB), at minute"] == "19.00 / 25.00, at 3.0"
    assert ours["minutes to 18.7 dB"] == round(120.5 / 60, 3) and pd.isna(ours["minutes to 26.69 dB"])
    # the untrained model's 20 dB is neither the best score nor a crossing
    assert authors["best (dB), at minute"] == "15.00 / 21.00, at 2.0" and pd.isna(authors["minutes to 18.7 dB"])
    assert report.long_run_table({}).empty
    assert report.long_run_path().name == "bench-60min.json"
    assert report.long_run_path().parent == report.bench_path().parent


def test_quality_plot_draws_each_run(quick_run):
    import matplotlib

    matplotlib.use("Agg")


    _, entry = quick_run
    ax = report.plot_quality(entry)
    labels = [line.get_label() for line in ax.get_lines()]
    assert "no separation (x/2 each)" in labels
    n_runs = sum(len(entry["quality"][r]["runs"]) for r in ("ours", "authors"))
    assert sum(label.startswith(("ours,", "authors,")) for label in labels) == n_runs


def test_cli_rejects_bad_options():
    with pytest.raises(ValueError, match="--skip"):
        bench_run.resolve_args(["--skip", "everything"])
    with pytest.raises(ValueError, match="--minutes"):
        bench_run.resolve_args(["--minutes", "5,x"])
    with pytest.raises(ValueError, match="--variants"):
        bench_run.parse_variant("fp64:12")
    assert bench_run.parse_env("none") == {}
    assert bench_run.parse_env("GOMP_SPINCOUNT=10000, OMP_WAIT_POLICY=ACTIVE") == {
        "GOMP_SPINCOUNT": "10000", "OMP_WAIT_POLICY": "ACTIVE"}
    for bad in ("GOMP_SPINCOUNT", "=3", "A B=1", ","):
        with pytest.raises(ValueError, match="--spin-env"):
            bench_run.parse_env(bad)
    assert bench_run.resolve_args(["--quick"]).spin_env == {}
    # on a CPU the spinning child spins as bssvae lets threads spin on idle cores (OpenMP's default count)
    assert bench_run.resolve_args(["--device", "cpu"]).spin_env == {"GOMP_SPINCOUNT": "300000"}
    assert bench_run.parse_variant("fp32:256:t1:compile") == {
        "name": "fp32:256:t1:compile", "precision": "fp32", "batch_size": 256, "threads": 1, "compile": True,
        "unfused": False}
    assert bench_run.parse_variant("bf16:512:unfused")["unfused"]
    with pytest.raises(ValueError, match="unknown option 'fused'"):  # fused Adam is our step's default
        bench_run.parse_variant("fp32:256:fused")


def test_audio_memory_is_the_child_process_own_peak():
    """The audio model is measured in its own process: its peak memory must not include the parent's
    (Linux's ru_maxrss would: a forked child inherits the parent's high-water mark)."""
    import resource
    import subprocess
    import sys

    held = np.ones(600 * 2 ** 20 // 8)  # the parent's peak now exceeds 600 MiB
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = subprocess.run([sys.executable, "-c", "from bench.audio import _rss_mib; print(_rss_mib())"],
                           capture_output=True, text=True, check=True, cwd=ROOT)
    assert held.sum() > 0 and float(child.stdout) < parent_peak - 300


def test_loop_and_batch_split_the_headline():
    thr = {"threads": 2, "ratio_of_medians": 4.0,
           "ours": {"mixtures_per_s": 400.0}, "authors": {"mixtures_per_s": 100.0, "batch_size": 32},
           "variants": [{"name": "fp32:32:t1", "batch_size": 32, "precision": "fp32", "threads": 1,
                         "mixtures_per_s": 90.0},
                        {"name": "fp32:32", "batch_size": 32, "precision": "fp32", "threads": 2,
                         "mixtures_per_s": 160.0}]}
    assert report.loop_and_batch({"throughput": thr}) == {"variant": "fp32:32", "loop": 1.6, "batch": 2.5}
    assert report.loop_and_batch({"throughput": dict(thr, variants=thr["variants"][:1])}) is None


def test_variant_gains_pairs_each_repeat():
    """report.variant_gains: each variant against the entry's own step as the median of per-repeat ratios
    (not the ratio of medians), with its peak fraction and warm-up; empty without variants."""
    from bench import report

    def step(name, samples, warmup=0.2):
        return {"name": name, "batch_size": 512, "precision": "bf16", "mixtures_per_s": sorted(samples)[1],
                "samples_mixtures_per_s": samples, "peak_fraction": 0.25, "warmup_seconds": warmup}

    ours = step("ours", [1000.0, 2000.0, 4000.0])
    assert report.variant_gains({"throughput": {"ours": ours}}).empty and report.variant_gains(None).empty
    t = report.variant_gains({"throughput": {"ours": ours, "variants": [
        step("bf16:512:compile", [1500.0, 2200.0, 4000.0], warmup=24.43), step("bf16:1024", [3000.0, 2000.0, 4400.0])]}})
    assert list(t.index) == ["bf16:512:compile", "bf16:1024"]
    gain = t["vs bf16:512 (median of repeats)"]
    assert gain["bf16:512:compile"] == 1.1  # ratios 1.5, 1.1, 1.0 -> 1.1; the ratio of medians would be 1.1 too
    assert gain["bf16:1024"] == 1.1  # ratios 3.0, 1.0, 1.1 -> 1.1, where the ratio of medians is 1.5
    assert t.loc["bf16:1024", "mixtures/s (median)"] == 3000 and t.loc["bf16:512:compile", "warm-up (s)"] == 24.4
    assert t.loc["bf16:1024", "of matmul peak (%)"] == 25.0


def test_compile_table_pairs_each_repeat(tmp_path):
    """report.compile_table: per waiting and batch, compiled over eager as the median of per-repeat ratios (not
    the ratio of medians), our step standing for the eager variant at its own batch; empty when a run is absent."""
    from bench import report

    (tmp_path / "bssvae").mkdir()
    folder = tmp_path / "results" / "ablations" / "compile-threads"
    folder.mkdir(parents=True)
    assert report.compile_table(root=tmp_path)[0].empty

    def step(batch, samples, compile=False):
        return {"batch_size": batch, "precision": "fp32", "compile": compile, "threads": 2, "fused_adam": True,
                "mixtures_per_s": sorted(samples)[1], "samples_mixtures_per_s": samples, "warmup_seconds": 1.0}

    for wait, spin in (("passive", None), ("spinning", "300000")):
        entry = {"command": f"python -m bench --output {wait}.json", "commit": "abc",
                 "settings": {"gomp_spincount": spin},
                 "hardware": {"cpu": "X", "cpu_capability": "AVX2", "cpu_flags": ["avx2"]},
                 "throughput": {"repeats": 3, "threads": 2, "ours": step(256, [1000.0, 2000.0, 4000.0]),
                                "variants": [step(256, [1500.0, 2200.0, 4000.0], compile=True),
                                             {**step(256, [9e9] * 3), "threads": 1},  # one thread: not the eager step
                                             step(512, [3000.0, 3000.0, 3000.0]),
                                             step(512, [3300.0, 3000.0, 3000.0], compile=True)]}}
        (folder / f"{wait}.json").write_text(json.dumps({"devices": {"cpu:X (AVX2)": entry}}))
        if wait == "passive":  # one run alone is not the ablation
            assert report.compile_table(root=tmp_path)[0].empty
    t, runs = report.compile_table(root=tmp_path)
    assert list(t.index) == [("passive", 256), ("passive", 512), ("spinning", 256), ("spinning", 512)]
    assert t.loc[("passive", 256), "compiled / eager"] == 1.1  # ratios 1.5, 1.1, 1.0 -> median 1.1
    assert t.loc[("passive", 256), "eager (mixtures/s)"] == 2000 and t.loc[("passive", 512), "compiled / eager"] == 1.0
    assert runs["spinning"] == {"device": "cpu:X (AVX2)", "command": "python -m bench --output spinning.json",
                                "commit": "abc", "repeats": 3, "gomp_spincount": "300000"}


def test_the_suite_compiles_into_a_fresh_inductor_cache_unless_told_otherwise(monkeypatch, tmp_path):
    """A compile variant's warm-up is a first compilation: each run of the suite gets its own empty
    TorchInductor cache, and a directory the user chose is kept and recorded."""
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    assert bench_run.fresh_inductor_cache() == "fresh"
    first = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    assert first.is_dir() and not any(first.iterdir()) and first.name.startswith("bssvae-bench-inductor-")
    assert bench_run.fresh_inductor_cache() == "fresh"  # a second run in the same process: another one
    assert Path(os.environ["TORCHINDUCTOR_CACHE_DIR"]) != first
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    assert bench_run.fresh_inductor_cache() == str(tmp_path)
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path)


def test_gap_table_differences_training_and_test_digits(tmp_path):
    """report.gap_table: one row per model and set; the gap is the mean of the model's training sets minus its
    test set (ELBO in % of the test set's); models kept apart; all empty without the file."""
    from bench import report

    (tmp_path / "bssvae").mkdir()
    assert all(len(part) == 0 for part in report.gap_table(root=tmp_path))
    folder = tmp_path / "results" / "ablations" / "generalization-gap"
    folder.mkdir(parents=True)

    def row(profile, seed, name, elbo, psnr, refined):
        score = {"psnr": psnr, "psnr_halved": psnr + 6.0206, "ssim": 0.8, "ssim_halved": 0.81}
        return {"profile": profile, "n_sources": 2, "seed": seed, "epochs": 280, "set": name,
                "objective": {"negative elbo, one sample": elbo},
                "scores": {"vaem": score, "vaem-refined": {**score, "psnr": refined, "psnr_halved": refined + 6}}}

    rows = [row("cpu", 0, "test digits (the committed test set)", 50.0, 20.0, 21.0),
            row("cpu", 0, "training digits 0-9,999", 49.0, 20.2, 21.3),
            row("cpu", 0, "training digits 50,000-59,999", 48.0, 20.4, 21.5),
            row("paper", 0, "test digits (the committed test set)", 60.0, 19.0, 20.0),
            row("paper", 0, "training digits 0-9,999", 60.0, 18.9, 20.0)]
    (folder / "gap.json").write_text(json.dumps({"rows": rows, "commit": "abc"}))
    table, gaps, meta = report.gap_table(root=tmp_path)
    assert meta == {"commit": "abc"} and len(table) == 5
    assert table.loc[("cpu, K = 2, seed 0, 280 epochs", "training digits 0-9,999"), "VAEM PSNR (dB)"] == "20.20 / 26.22"
    cpu, paper = gaps.loc["cpu, K = 2, seed 0, 280 epochs"], gaps.loc["paper, K = 2, seed 0, 280 epochs"]
    assert cpu["training sets"] == 2 and cpu["VAEM PSNR (dB)"] == 0.3 and cpu["refined VAEM PSNR (dB)"] == 0.4
    assert cpu["negative ELBO (%)"] == -3.0 and cpu["VAEM SSIM"] == 0.0
    assert paper["training sets"] == 1 and paper["VAEM PSNR (dB)"] == -0.1 and paper["negative ELBO (%)"] == 0.0


def test_fit_table_reads_mnist_vae_k2_runs_once(tmp_path):
    """report.fit_table: each MNIST VAE run with K = M = 2, a history and a VAEM row, its loss averaged over the last
    epochs; other tasks, methods or K and broken runs are left out; a run repeating a profile run's losses counts once."""
    from bench import report

    (tmp_path / "bssvae").mkdir()
    assert report.fit_table(root=tmp_path).empty

    from bssvae import RUN_FORMAT_VERSION
    from bssvae.config import make_config

    def run(rel, losses, psnr, task="mnist", method="vae", n_sources=2, **cfg):
        d = tmp_path / "results" / rel
        d.mkdir(parents=True)
        c = make_config("cpu", task, method, n_sources, epochs=len(losses), batch_size=512, lr=0.002,
                        lr_schedule="cosine", precision="bf16", seed=0,
                        **{"beta_warmup_epochs": 0, "optimizer": "adam", **cfg})
        (d / "config.json").write_text(json.dumps({"format_version": RUN_FORMAT_VERSION, "config": c.to_dict()}))
        (d / "metrics.json").write_text(json.dumps({"rows": [{"method": "vae", "psnr": 1.0},
                                                             {"method": "vaem", "psnr": psnr}]}))
        (d / "history.csv").write_text("epoch,loss,train_seconds\n" + "".join(
            f"{i + 1},{v},{i * 1.5 + len(rel)}\n" for i, v in enumerate(losses)))

    run("cpu/runs/mnist-vae-K2-M2-seed0", [90, 80, 70, 60, 50, 40], 20.0)
    run("ablations/retrain/run", [90, 80, 70, 60, 50, 40], 20.0)  # same losses, other timings: counted once
    run("ablations/trial/run", [70, 66, 62], 19.123, beta_warmup_epochs=10)
    run("ablations/k3/run", [70, 60], 18.0, n_sources=3)
    run("ablations/ae/run", [70, 60], 18.0, method="ae")
    run("ablations/audio/run", [70, 60], 18.0, task="audio")
    (tmp_path / "results" / "ablations" / "broken").mkdir()
    (tmp_path / "results" / "ablations" / "broken" / "history.csv").write_text("epoch,loss\n1,5\n")  # no config
    run("ablations/old/run", [70, 60], 18.0)
    (tmp_path / "results" / "ablations" / "old" / "run" / "config.json").write_text('{"config": {}}')  # no format version
    run("ablations/beta/run", [60, 50], 21.0, beta=0.25)  # another objective: only when asked for
    run("ablations/muon/run", [60, 52], 20.5, optimizer="muon")  # another optimizer: only when asked for
    t = report.fit_table(root=tmp_path, last_epochs=2)
    assert list(t.index) == ["cpu/runs/mnist-vae-K2-M2-seed0", "ablations/trial/run"]
    assert list(report.fit_table(root=tmp_path, last_epochs=2, beta=0.25).index) == ["ablations/beta/run"]
    assert len(report.fit_table(root=tmp_path, beta=None)) == 3
    assert list(report.fit_table(root=tmp_path, optimizer="muon").index) == ["ablations/muon/run"]
    assert len(report.fit_table(root=tmp_path, beta=None, optimizer=None)) == 4
    assert t.loc["cpu/runs/mnist-vae-K2-M2-seed0", "loss, last 2 epochs"] == 45.0
    assert t.loc["ablations/trial/run", "loss, last 2 epochs"] == 64.0
    assert t.loc["ablations/trial/run", "VAEM PSNR (dB)"] == 19.12 and t.loc["ablations/trial/run", "beta warm-up (epochs)"] == 10


def test_epochs_table_sets_each_length_beside_the_run_of_the_same_recipe(tmp_path):
    """report.epochs_table: the runs of the ablation folder, and every run kept elsewhere whose recipe is one of
    theirs but for its epochs (not one that differs in anything else, nor a second copy of a length the folder
    holds), with its loss, training minutes, how its threads waited and the machine it trained on; an unknown factor
    is refused by name."""
    from bench import report

    (tmp_path / "bssvae").mkdir()
    assert report.epochs_table(root=tmp_path).empty

    from bssvae import RUN_FORMAT_VERSION
    from bssvae.config import make_config

    epyc = {"cpu": "AMD EPYC", "cpu_capability": "AVX512", "cpu_flags": ["fma", "avx2", "avx512f", "avx512_bf16"]}
    xeon = {"cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512",
            "cpu_flags": ["fma", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]}

    def run(rel, losses, psnr, wait=None, refined=False, hw=None, **cfg):
        d = tmp_path / "results" / rel
        d.mkdir(parents=True)
        c = make_config("cpu", "mnist", "vae", 2, **{"epochs": len(losses), "batch_size": 512, "lr": 0.002,
                                                     "precision": "bf16", "seed": 0, "optimizer": "adam", **cfg})
        (d / "config.json").write_text(json.dumps({"format_version": RUN_FORMAT_VERSION, "config": c.to_dict()}))
        row = {"psnr": psnr, "psnr_halved": psnr + 6, "ssim": 0.8, "ssim_halved": 0.85, "train_seconds": 30.0 * len(losses)}
        rows = [{**row, "method": "vae", "psnr": psnr - 3}, {**row, "method": "vaem"}]
        if refined:  # scored again by bssvae evaluate --refine-steps, which records how long it took
            rows.append({**row, "method": "vaem-refined", "psnr": psnr + 1})
        (d / "metrics.json").write_text(json.dumps({"rows": rows, **({"evaluation": {"eval_seconds": 35.5}} if refined
                                                                      else {})}))
        (d / "history.csv").write_text("epoch,loss,recon,kl\n" + "".join(
            f"{i + 1},{v},{v - 10},{20}\n" for i, v in enumerate(losses)))
        if wait is not None:
            (d / "provenance.json").write_text(json.dumps({"hardware": {**(hw or {}), "openmp": {"wait": wait}}}))
        return d

    run("ablations/epochs/e2", [70, 60], 19.0, wait="spin", hw=epyc)
    run("ablations/epochs/e5", [70, 60, 55, 52, 50], 20.0, wait="spin", refined=True, hw=xeon)
    run("cpu/runs/mnist-vae-K2-M2-seed0", [70, 60, 56], 19.5)  # the profile's length: the reference
    run("ablations/other/e5", [71, 61, 56, 53, 51], 19.9)  # a length the folder holds: not added again
    run("ablations/lr/e3", [70, 60, 57], 19.4, lr=0.003)  # another learning rate
    run("ablations/beta/e3", [70, 60, 57], 19.4, beta=0.25)  # another objective
    run("ablations/seed1/e3", [70, 60, 58], 19.3, seed=1)  # another seed
    t = report.epochs_table("epochs", root=tmp_path, last_epochs=2)
    assert list(t["run"]) == ["ablations/epochs/e2", "cpu/runs/mnist-vae-K2-M2-seed0", "ablations/epochs/e5"]
    assert list(t["epochs"]) == [2, 3, 5] and list(t["threads wait"]) == ["spin", "not recorded", "spin"]
    assert list(t["training minutes"]) == [1.0, 1.5, 2.5] and list(t["loss, last 2 epochs"]) == [65.0, 58.0, 51.0]
    assert t["refined VAEM PSNR (dB)"].isna().tolist() == [True, True, False]
    assert t["refinement (s)"].isna().tolist() == [True, True, False] and t["refinement (s)"].iloc[2] == 35.5
    assert list(t["machine"]) == ["AMD EPYC (AVX512, AVX512-BF16)", "not recorded", "Intel Xeon Processor (AVX512, AMX)"]
    # a GPU run is named by its GPU; a CPU that recorded its model alone by that
    gpu = run("gpu/e4", [1, 1, 1, 1], 20.0, wait="spin", hw={**xeon, "device": "cuda", "gpu": "NVIDIA H100 80GB HBM3"})
    assert report._machine(report._hardware_of(gpu)) == "NVIDIA H100 80GB HBM3"
    old = run("old/e4", [1, 1, 1, 1], 20.0, wait="passive", hw={"cpu": "AMD EPYC"})
    assert report._machine(report._hardware_of(old)) == "AMD EPYC"
    assert report._hardware_of(tmp_path / "nowhere") == {} and report._machine({}) == "not recorded"
    # where the hardware recorded the CPU's family and model, the machine names them, as the suite's keys do
    zen5 = {**epyc, "cpu_id": {"vendor": "AuthenticAMD", "family": 26, "model": 2}}
    assert report._machine(zen5) == "AMD EPYC (AVX512, AVX512-BF16; family 26 model 2)"
    assert report._machine({"cpu": "AMD EPYC", "cpu_id": zen5["cpu_id"]}) == "AMD EPYC (family 26 model 2)"
    from bench.run import cpu_key
    assert cpu_key(zen5) == "cpu:" + report._machine(zen5)  # the suite's key names it alike
    # wsd's fall over another fraction of the run is a setting of its own, named in the schedule column
    run("ablations/wsd/f0.4", [70, 60, 55], 19.8, lr_schedule="wsd", wsd_decay_fraction=0.4)
    run("cpu/runs/mnist-vae-K2-M2-seed0-wsd", [70, 60, 56], 19.6, lr_schedule="wsd")
    t = report.ablation_table("wsd", "wsd_decay_fraction", root=tmp_path)
    assert list(t["run"]) == ["ablations/wsd/f0.4", "cpu/runs/mnist-vae-K2-M2-seed0-wsd"]
    assert list(t["schedule"]) == ["wsd (last 40 %)", "wsd"]
    with pytest.raises(ValueError, match="not 'width'"):
        report.ablation_table("epochs", "width", root=tmp_path)
    with pytest.raises(ValueError, match=r"not \('lr', 'width'\)"):
        report.ablation_table("epochs", ("lr", "width"), root=tmp_path)
    # two fields set together: Muon's rate and Adam's set apart meet the runs that differ in either or both; with a
    # reference, only those with its values of both; the Muon column is Adam's rate times the scale
    muon = dict(optimizer="muon", lr_schedule="wsd", batch_size=1024)
    run("ablations/apart/adam2x", [69, 59, 54], 19.9, lr=0.004, muon_lr_scale=0.5, **muon)
    run("cpu/runs/muon-seed0", [69, 59, 55], 19.7, **muon)  # lr 0.002, scale 1
    run("ablations/peak/lr0.004", [69, 59, 56], 19.6, lr=0.004, **muon)  # another peak, one rate for both
    t = report.ablation_table("apart", ("lr", "muon_lr_scale"), root=tmp_path)
    assert set(t["run"]) == {"ablations/apart/adam2x", "cpu/runs/muon-seed0", "ablations/peak/lr0.004"}
    t = report.ablation_table("apart", ("lr", "muon_lr_scale"), root=tmp_path, reference=(0.002, 1.0))
    assert list(t["run"]) == ["cpu/runs/muon-seed0", "ablations/apart/adam2x"]
    assert list(t["lr"]) == [0.002, 0.004] and list(t["Muon lr"]) == [0.002, 0.002]
    assert list(t["optimizer"]) == ["muon", "muon (lr x 0.5)"]
    assert report.ablation_table("apart", "muon_lr_scale", root=tmp_path)["run"].tolist() == [
        "ablations/peak/lr0.004", "ablations/apart/adam2x"]  # the same Adam rate, one rate for both
    assert report.ablation_table("epochs", "epochs", root=tmp_path)["Muon lr"].isna().all()  # Adam alone
    # Muon's weight decay is a column of its own, 0 where a Muon run names none, NaN for Adam alone
    run("ablations/decay/wd0.1", [69, 59, 53], 20.1, muon_weight_decay=0.1, **muon)
    t = report.ablation_table("decay", "muon_weight_decay", root=tmp_path, reference=0.0)
    assert list(t["run"]) == ["cpu/runs/muon-seed0", "ablations/decay/wd0.1"]
    assert list(t["Muon weight decay"]) == [0.0, 0.1] and list(t["optimizer"]) == ["muon", "muon (weight decay 0.1)"]
    assert report.ablation_table("epochs", "epochs", root=tmp_path)["Muon weight decay"].isna().all()
    # a run of the folder that a profile's run repeats to the bit (trained again on another CPU) stays in its table,
    # where pooled tables count the two once (the profile's)
    run("cpu/runs/mnist-vae-K2-M2-seed1", [70, 60, 57, 54, 52], 19.6, seed=1)
    run("ablations/epochs/e5-seed1", [70, 60, 57, 54, 52], 19.6, seed=1)
    t = report.ablation_table("epochs", "epochs", root=tmp_path)
    assert "ablations/epochs/e5-seed1" in set(t["run"])
    assert [str(r[0].relative_to(tmp_path / "results")) for r in report._mnist_vae_k2_runs(tmp_path / "results")
            if r[1].seed == 1 and r[1].epochs == 5] == ["cpu/runs/mnist-vae-K2-M2-seed1"]


def test_same_seed_pairs_meet_each_change_with_the_base_run_of_its_seed_and_word_the_gains():
    from bench import report

    table = pd.DataFrame({"schedule": ["wsd", "wsd", "wsd", "wsd (last 10 %)", "wsd (last 10 %)", "wsd (last 40 %)"],
                          "seed": [0, 1, 2, 1, 0, 3],  # seed 3 has no base run: left out
                          "VAEM PSNR (dB)": [21.0, 21.5, 21.2, 21.4, 21.25, 22.0],
                          "refined VAEM PSNR (dB)": [22.0, 22.5, 22.2, 22.6, 22.0, 23.0]})
    pairs = report.same_seed_pairs(table, "schedule", "wsd")
    assert list(pairs) == ["wsd (last 10 %)", "wsd (last 40 %)"]
    runs, base = pairs["wsd (last 10 %)"]
    assert list(runs.index) == list(base.index) == [0, 1]
    assert list(base["VAEM PSNR (dB)"]) == [21.0, 21.5]
    assert report.same_seed_words(runs, base) == (
        "seeds 0 and 1 reached 21.25 and 21.40 dB: +0.25 and -0.10 dB against the committed run of the same seed, "
        "lower on 1 of 2 seeds (mean +0.07 dB; refined +0.00 and +0.10 dB")
    assert report.same_seed_words(runs.loc[[0]], base.loc[[0]]) == (
        "seed 0 reached 21.25 dB: +0.25 dB against the committed run of the same seed (refined +0.00 dB")
    assert report.same_seed_words(runs, base, "the run of the same seed held at 0.0056").startswith(
        "seeds 0 and 1 reached 21.25 and 21.40 dB: +0.25 and -0.10 dB against the run of the same seed held at "
        "0.0056, ")
    assert pairs["wsd (last 40 %)"][0].empty
    runs = runs.assign(**{"reconstruction, last 5 epochs": [40.0, 41.5], "KL, last 5 epochs": [30.0, 29.25]})
    base = base.assign(**{"reconstruction, last 5 epochs": [40.5, 41.0], "KL, last 5 epochs": [29.0, 30.0]})
    assert report.terms_moved(runs, base) == (
        "its reconstruction term at the end moved by -0.50 and +0.50 and its KL term by +1.00 and -0.75")


def test_same_run_holds_only_for_the_same_losses_and_scores_to_the_last_bit(tmp_path):
    """report.same_run: two run directories with equal histories and equal rows are the same run; a loss one ulp
    apart, a score one ulp apart, a row the other lacks, or a run without epochs or rows is not."""
    from bench import report

    def write(name, losses, rows):
        run = tmp_path / name
        run.mkdir()
        pd.DataFrame({"epoch": range(1, len(losses) + 1), "loss": losses, "recon": [x - 1 for x in losses],
                      "kl": [2.0] * len(losses)}).to_csv(run / "history.csv", index=False)
        if rows is not None:
            (run / "metrics.json").write_text(json.dumps({"rows": rows}))
        return run

    row = {"method": "vaem", "psnr": 21.52188869611898, "ssim": 0.89, "psnr_halved": 27.5, "ssim_halved": 0.904}
    refined = {**row, "method": "vaem-refined", "psnr": 23.2}
    losses = [185.3245849609375, 60.25]
    a = write("a", losses, [row, refined])
    assert report.same_run(a, write("b", list(losses), [dict(row), dict(refined)]))
    assert not report.same_run(a, write("loss", [losses[0], math.nextafter(losses[1], 0)], [row, refined]))
    assert not report.same_run(a, write("score", losses, [{**row, "psnr": math.nextafter(row["psnr"], 0)}, refined]))
    assert not report.same_run(a, write("unrefined", losses, [row]))
    assert not report.same_run(a, write("unscored", losses, None))
    assert not report.same_run(write("empty", [], [row]), write("empty2", [], [row]))


def test_beta_table_sets_the_ablation_beside_the_same_recipe_with_the_papers_beta(tmp_path):
    """report.beta_table: the runs of the ablation folder, and the one run elsewhere under results/ whose recipe is
    theirs with beta = 0.5 (not one that differs in anything else), with the objective's two terms at the end and
    the VAE and VAEM scores, sorted by beta."""
    from bench import report

    (tmp_path / "bssvae").mkdir()
    assert report.beta_table(root=tmp_path).empty

    from bssvae import RUN_FORMAT_VERSION
    from bssvae.config import make_config

    def run(rel, recon, kl, psnr, refined=False, **cfg):
        d = tmp_path / "results" / rel
        d.mkdir(parents=True)
        c = make_config("cpu", "mnist", "vae", 2, **{"epochs": len(recon), "batch_size": 512, "lr": 0.002,
                                                     "precision": "bf16", "seed": 0, "optimizer": "adam", **cfg})
        (d / "config.json").write_text(json.dumps({"format_version": RUN_FORMAT_VERSION, "config": c.to_dict()}))
        row = {"psnr": psnr, "psnr_halved": psnr + 6, "ssim": 0.8, "ssim_halved": 0.85}
        rows = [{**row, "method": "vae", "psnr": psnr - 3}, {**row, "method": "vaem"}]
        if refined:
            rows.append({**row, "method": "vaem-refined", "psnr": psnr + 1, "psnr_halved": psnr + 7, "ssim_halved": 0.9})
        (d / "metrics.json").write_text(json.dumps({"rows": rows}))
        (d / "history.csv").write_text("epoch,loss,recon,kl\n" + "".join(
            f"{i + 1},{r + c.beta * k},{r},{k}\n" for i, (r, k) in enumerate(zip(recon, kl))))

    run("ablations/beta-bf16/b1", [70, 60], [10, 12], 18.0, beta=1.0)
    run("ablations/beta-bf16/b1-again", [70, 60], [10, 12], 18.0, beta=1.0)  # the same losses: counted once
    run("ablations/beta-bf16/b025", [60, 50], [30, 32], 20.0, refined=True, beta=0.25)
    run("ablations/beta-bf16/b025-s1", [61, 51], [30, 32], 19.8, beta=0.25, seed=1)
    run("ablations/epochs/e2", [66, 56], [20, 22], 19.0)  # same recipe, beta = 0.5: the reference of seed 0
    run("ablations/epochs/e3", [66, 56, 50], [20, 22, 23], 19.5)  # other epochs
    run("ablations/lr/e2", [66, 55], [20, 22], 19.2, lr=0.003)  # other learning rate
    run("cpu/runs/mnist-vae-K2-M2-seed1", [66, 57], [20, 21], 19.1, seed=1)  # the reference of seed 1 ...
    run("ablations/retrained/s1", [66, 57], [20, 21], 19.1, seed=1)  # ... and its copy, counted once
    t = report.beta_table(root=tmp_path, last_epochs=2)
    assert list(zip(t["seed"], t["beta"])) == [(0, 0.25), (0, 0.5), (0, 1.0), (1, 0.25), (1, 0.5)]
    assert list(t[t["beta"] == 0.5]["run"]) == ["ablations/epochs/e2", "cpu/runs/mnist-vae-K2-M2-seed1"]
    b025 = t[(t["beta"] == 0.25) & (t["seed"] == 0)].iloc[0]
    assert b025["reconstruction, last 2 epochs"] == 55.0 and b025["KL, last 2 epochs"] == 31.0
    assert (b025["refined VAEM PSNR (dB)"], b025["refined VAEM PSNR halved (dB)"], b025["refined VAEM SSIM halved"]) == (
        21.0, 27.0, 0.9)
    assert t[t["run"] != "ablations/beta-bf16/b025"]["refined VAEM PSNR (dB)"].isna().all()
    assert t["refinement (s)"].isna().all()  # b025's metrics recorded no evaluation: its time is not known
    b1 = t[t["beta"] == 1.0].iloc[0]
    assert b1["VAE PSNR (dB)"] == 15.0 and b1["VAEM PSNR halved (dB)"] == 24.0 and b1["epochs"] == 2
    assert report.beta_table("none", root=tmp_path).empty


def test_tables_name_muons_layers_and_iterations_where_not_its_defaults(tmp_path):
    """A run or suite file of Muon with other layers or Newton-Schulz iterations than its defaults is named so in the
    tables, and is another recipe than Muon's default: an ablation's reference must match those settings too."""
    from bench import report
    from bssvae import RUN_FORMAT_VERSION
    from bssvae.config import make_config

    assert report.optimizer_label({}) == "adam" and report.optimizer_label({"optimizer": "muon"}) == "muon"
    assert report.optimizer_label({"optimizer": "muon", "muon_layers": "hidden", "muon_ns_steps": 5}) == "muon"
    assert report.optimizer_label({"optimizer": "muon", "muon_layers": "all", "muon_ns_steps": 3}) == \
        "muon (all layers, 3 iterations)"
    assert report.optimizer_label({"optimizer": "muon", "muon_ns_steps": 3}) == "muon (3 iterations)"
    assert report.optimizer_label({"optimizer": "muon", "muon_momentum": 0.9}) == "muon (momentum 0.9)"
    assert report.optimizer_label({"optimizer": "muon", "muon_lr_scale": 2.0}) == "muon (lr x 2)"
    assert report.optimizer_label({"optimizer": "muon", "muon_weight_decay": 0.1}) == "muon (weight decay 0.1)"
    assert report.optimizer_label({"optimizer": "muon", "muon_ns_steps": 3, "muon_momentum": 0.95}) == "muon (3 iterations)"
    (tmp_path / "bssvae").mkdir()

    def run(rel, psnr, **cfg):
        d = tmp_path / "results" / rel
        d.mkdir(parents=True)
        c = make_config("cpu", "mnist", "vae", 2, epochs=2, batch_size=1024, lr=0.0056, precision="bf16",
                        optimizer="muon", **cfg).to_dict()
        (d / "config.json").write_text(json.dumps({"format_version": RUN_FORMAT_VERSION, "config": c}))
        row = {"psnr": psnr, "psnr_halved": psnr + 6, "ssim": 0.8, "ssim_halved": 0.85, "train_seconds": 60.0}
        (d / "metrics.json").write_text(json.dumps({"rows": [{**row, "method": "vae"}, {**row, "method": "vaem"}]}))
        (d / "history.csv").write_text(f"epoch,loss,recon,kl\n1,70,60,20\n2,{psnr + 45},55,20\n")  # each its own

    run("ablations/layers/all-seed1", 20.6, muon_layers="all", seed=1)
    run("ablations/tuning/hidden-seed1", 20.4, seed=1)  # Muon's defaults: another recipe, not the reference
    run("ablations/tuning/all-seed0", 20.5, muon_layers="all")  # the same recipe but the seed
    t = report.ablation_table("layers", "seed", root=tmp_path, last_epochs=1)
    assert t[["run", "optimizer"]].values.tolist() == [["ablations/tuning/all-seed0", "muon (all layers)"],
                                                       ["ablations/layers/all-seed1", "muon (all layers)"]]
    folder = tmp_path / "results" / "ablations" / "suite"
    folder.mkdir()
    for name, extra in (("adam.json", {}), ("muon.json", {"optimizer": "muon"}),
                        ("all.json", {"optimizer": "muon", "muon_layers": "all", "muon_ns_steps": 3})):
        entry = {"commit": "abc", "settings": {"our_config": {"batch_size": 1024, "lr": 5.6e-3, "precision": "bf16",
                                                              **extra}},
                 "quality": {"ours": {"runs": [{"budget_minutes": 15.0, "epochs_done": 300.0, "epochs_planned": 310,
                                                "mixtures": 9_000_000, "train_seconds": 900.0}],
                                      "psnr_after_minutes": {"15": 21.0}, "psnr_halved_after_minutes": {"15": 27.0},
                                      "minutes_to_db": {"18_7": 1.0, "26_69": None}}}}
        (folder / name).write_text(json.dumps({"devices": {"cpu:X": entry}}))
    raw = report.trial_scores("suite", root=tmp_path).set_index("file")
    assert raw["optimizer"].to_dict() == {"adam.json": "adam", "all.json": "muon", "muon.json": "muon"}
    assert raw["muon layers"].dropna().to_dict() == {"all.json": "all", "muon.json": "hidden"}
    assert raw["ns steps"].dropna().to_dict() == {"all.json": 3, "muon.json": 5}
    assert raw.loc["adam.json", ["muon layers", "ns steps"]].isna().all()  # Adam has neither
    assert report.trials_table("suite", root=tmp_path)["optimizer"].to_dict() == {
        "adam.json": "adam", "all.json": "muon (all layers, 3 iterations)", "muon.json": "muon"}


def test_optimizer_table_and_trials_name_the_optimizer(tmp_path):
    """report.optimizer_table: the Muon ablation's runs with the optimizer each trained with (a run from before the
    option is an Adam run), each beside the kept run of the same recipe with the other optimizer; trials_table names
    the optimizer of each suite file's recipe, Adam where its settings are from before the option."""
    from bench import report

    (tmp_path / "bssvae").mkdir()
    assert report.optimizer_table(root=tmp_path).empty

    from bssvae import RUN_FORMAT_VERSION
    from bssvae.config import make_config

    def run(rel, losses, psnr, trained=None, **cfg):
        d = tmp_path / "results" / rel
        d.mkdir(parents=True)
        c = make_config("cpu", "mnist", "vae", 2, **{"epochs": len(losses), "batch_size": 512, "lr": 0.002,
                                                     "precision": "bf16", "seed": 0, "optimizer": "adam",
                                                     "lr_schedule": "cosine", **cfg}).to_dict()
        if cfg.get("optimizer") is None:
            del c["optimizer"]  # written before the option
        (d / "config.json").write_text(json.dumps({"format_version": RUN_FORMAT_VERSION, "config": c}))
        row = {"psnr": psnr, "psnr_halved": psnr + 6, "ssim": 0.8, "ssim_halved": 0.85, "train_seconds": 60.0,
               **({"epochs": trained} if trained else {})}
        (d / "metrics.json").write_text(json.dumps({"rows": [{**row, "method": "vae"}, {**row, "method": "vaem"}]}))
        (d / "history.csv").write_text("epoch,loss,recon,kl\n" + "".join(
            f"{i + 1},{v},{v - 10},20\n" for i, v in enumerate(losses)))

    run("ablations/muon/e2-muon", [68, 62], 19.7, optimizer="muon")
    run("ablations/epochs/e2", [70, 65], 18.8)  # the same recipe with Adam, kept elsewhere: its reference
    run("ablations/lr/e2", [70, 64], 18.9, lr=0.003)  # another learning rate
    t = report.optimizer_table(root=tmp_path, last_epochs=1)
    assert list(zip(t["run"], t["optimizer"])) == [("ablations/epochs/e2", "adam"), ("ablations/muon/e2-muon", "muon")]
    assert list(t["loss, last 1 epochs"]) == [65.0, 62.0] and list(t["VAEM PSNR (dB)"]) == [18.8, 19.7]
    assert list(t["batch"]) == [512, 512] and list(t["lr"]) == [0.002, 0.002] and t["budget (min)"].isna().all()
    # a run that a time budget ended (bssvae train --minutes) shows the epochs it trained, not its config's
    run("ablations/muon-hour/m60", [66, 61], 20.5, trained=2, optimizer="muon", batch_size=1024, lr=0.0056,
        budget_minutes=60.0, epochs=5000)
    h = report.optimizer_table("muon-hour", root=tmp_path, last_epochs=1)
    assert h[["run", "epochs", "batch", "lr", "budget (min)"]].values.tolist() == [
        ["ablations/muon-hour/m60", 2, 1024, 0.0056, 60.0]]

    folder = tmp_path / "results" / "ablations" / "trials"
    folder.mkdir()
    for name, extra, wait in (("adam.json", {}, {"omp_wait_policy": "PASSIVE"}),
                              ("muon.json", {"optimizer": "muon", "seed": 1}, {"gomp_spincount": "300000"})):
        entry = {"commit": "abc", "settings": {**wait, "our_config": {"batch_size": 512, "lr": 2e-3, "precision": "bf16",
                                                                      **extra}},
                 "quality": {"ours": {"runs": [{"budget_minutes": 15.0, "epochs_done": 100.0, "epochs_planned": 106,
                                                "mixtures": 3_000_000, "train_seconds": 900.0}],
                                      "psnr_after_minutes": {"15": 20.0}, "psnr_halved_after_minutes": {"15": 26.0},
                                      "minutes_to_db": {"18_7": 3.0, "26_69": None}}}}
        (folder / name).write_text(json.dumps({"devices": {"cpu:X": entry}}))
    t = report.trials_table("trials", root=tmp_path)
    assert t["optimizer"].to_dict() == {"adam.json": "adam", "muon.json": "muon"}
    assert t["seed"].to_dict() == {"adam.json": 0, "muon.json": 1}  # seed 0 where the settings have none
    (folder / "broken.json").write_text("{")
    raw = report.trial_scores("trials", root=tmp_path)  # unrounded, for the book to compute with
    assert raw[["file", "optimizer", "seed", "batch", "lr", "budget (min)", "epochs", "psnr",
                "psnr_halved"]].values.tolist() == [["adam.json", "adam", 0, 512, 2e-3, 15.0, 100.0, 20.0, 26.0],
                                                    ["muon.json", "muon", 1, 512, 2e-3, 15.0, 100.0, 20.0, 26.0]]
    assert raw["threads wait"].tolist() == ["passive", "spin 300000"]
    assert report.trial_scores("absent", root=tmp_path).empty
    other = {"other/muon.json": json.loads((folder / "muon.json").read_text())["devices"]["cpu:X"]}
    both = report.trial_scores("trials", root=tmp_path, extra=other)  # another folder's files, under their labels
    assert both["file"].tolist() == ["adam.json", "muon.json", "other/muon.json"]
    assert report.trials_table("trials", root=tmp_path, extra=other).index.tolist() == [
        "adam.json", "muon.json", "other/muon.json"]
    assert report.trials_table("absent", root=tmp_path, extra=other).empty  # no trials of its own: nothing to show
    assert report.profile_vaem_scores("cpu", root=tmp_path).empty  # no results/cpu/mnist.csv
    (tmp_path / "results" / "cpu").mkdir()
    pd.DataFrame({"method": ["vaem", "vae", "vaem", "vaem"], "n_sources": [2, 2, 3, 2],
                  "psnr": [20.3, 17.0, 19.0, 19.9]}).to_csv(tmp_path / "results" / "cpu" / "mnist.csv", index=False)
    assert report.profile_vaem_scores("cpu", root=tmp_path).tolist() == [20.3, 19.9]  # VAEM, K = 2 only
    assert report.profile_vaem_scores("cpu", n_sources=3, root=tmp_path).tolist() == [19.0]
    kept = tmp_path / "results" / "ablations" / "kept"  # a recipe's runs kept in another folder
    kept.mkdir(parents=True)
    pd.DataFrame({"method": ["vaem"], "n_sources": [2], "psnr": [18.5]}).to_csv(kept / "mnist.csv", index=False)
    assert report.profile_vaem_scores(folder="ablations/kept", root=tmp_path).tolist() == [18.5]
    assert report.profile_vaem_scores(folder="ablations/none", root=tmp_path).empty


def test_recipe_runs_reads_each_folders_runs_with_their_recipe_machine_and_scores(tmp_path):
    """report.recipe_runs: one row per K = 2 run of each folder's mnist.csv, in the order of the folders then by seed,
    with the run's recipe from its config.json, its machine from its provenance, and refined scores where it has them."""
    from bssvae import RUN_FORMAT_VERSION
    from bssvae.config import make_config

    hw = {"device": "cpu", "cpu": "Intel(R) Xeon(R) Processor", "cpu_capability": "AVX512",
          "cpu_flags": ["fma", "avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"]}
    for folder, optimizer, seeds in (("cpu", "muon", (1, 0)), ("ablations/adam", "adam", (0,))):
        rows = []
        for seed in seeds:
            run = f"results/{folder}/runs/mnist-vae-K2-M2-seed{seed}"
            (tmp_path / run).mkdir(parents=True)
            c = make_config("cpu", precision="bf16", optimizer=optimizer, seed=seed)
            (tmp_path / run / "config.json").write_text(json.dumps({"format_version": RUN_FORMAT_VERSION,
                                                                    "config": c.to_dict()}))
            (tmp_path / run / "provenance.json").write_text(json.dumps({"hardware": hw}))
            score = {"n_sources": 2, "seed": seed, "epochs": c.epochs, "train_seconds": 900.0, "run_dir": run}
            rows += [{**score, "method": "vaem", "psnr": 20.0 + seed, "psnr_halved": 26.0 + seed, "ssim_halved": 0.89}]
            if optimizer == "muon":
                rows += [{**score, "method": "vaem-refined", "psnr": 22.0, "psnr_halved": 28.0, "ssim_halved": 0.91}]
        rows += [{**rows[0], "method": "vaem", "n_sources": 3}]  # K = 3: left out
        pd.DataFrame(rows).to_csv(tmp_path / "results" / folder / "mnist.csv", index=False)
    t = report.recipe_runs(["cpu", "ablations/adam", "ablations/absent"], root=tmp_path)
    assert t[["folder", "optimizer", "batch", "lr", "epochs", "seed"]].values.tolist() == [
        ["cpu", "muon", 1024, 2.8e-3, 320, 0], ["cpu", "muon", 1024, 2.8e-3, 320, 1],
        ["ablations/adam", "adam", 512, 2e-3, 280, 0]]
    assert t["machine"].tolist() == ["Intel Xeon Processor (AVX512, AMX)"] * 3
    assert t["run"].tolist() == ["cpu/runs/mnist-vae-K2-M2-seed0", "cpu/runs/mnist-vae-K2-M2-seed1",
                                 "ablations/adam/runs/mnist-vae-K2-M2-seed0"]
    assert t["schedule"].tolist() == ["wsd", "wsd", "cosine"]  # each run's config: the bf16 recipes of Muon and Adam
    assert t["VAEM PSNR (dB)"].tolist() == [20.0, 21.0, 20.0] and t["training minutes"].tolist() == [15.0] * 3
    assert t["refined VAEM PSNR (dB)"].tolist()[:2] == [22.0, 22.0] and math.isnan(t["refined VAEM PSNR (dB)"].iloc[2])
    assert report.recipe_runs(["ablations/absent"], root=tmp_path).empty


def test_recipe_words_name_the_schedule_where_asked():
    """report.recipe_words: optimizer, precision, batch and peak; with schedule=True also the schedule, which tells the
    profile's bf16 recipe today (Muon held at its peak) from the same recipe along its cosine."""
    from bssvae.config import make_config

    now = make_config("cpu", precision="bf16").to_dict()
    before = {**now, "lr_schedule": "cosine"}
    assert report.recipe_words(now) == report.recipe_words(before) == "Muon, bf16, batch 1,024, lr 0.0028"
    assert report.recipe_words(now, schedule=True) == "Muon, bf16, batch 1,024, lr 0.0028, wsd"
    assert report.recipe_words(before, schedule=True).endswith(", cosine")


def test_db_text_keeps_a_score_on_its_side_of_the_target():
    """report.db_text: two decimals, three where two would carry a score across the target (either way)."""
    assert report.db_text(21.6821) == "21.68" and report.db_text(22.0912) == "22.09"
    assert report.db_text(21.99689) == "21.997"  # 22.00 would read as reaching 22 dB
    assert report.db_text(22.0) == "22.00" and report.db_text(26.6851, target=26.69) == "26.685"
    assert report.db_text(26.694, target=26.69) == "26.69"  # rounds down onto the target and is past it


def test_listed_words_values_as_the_book_lists_them():
    from bench import report

    assert report.listed([]) == "" and report.listed(["a"]) == "a"
    assert report.listed(["a", "b"]) == "a and b"
    assert report.listed([19.861, 19.6, 19.62], ".2f") == "19.86, 19.60 and 19.62"
    assert report.listed(iter([0.53, -0.13]), "+.2f") == "+0.53 and -0.13"  # any iterable, once
