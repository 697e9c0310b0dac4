"""Baselines: NMF, GLO, MixIT and the oracle masks, run through the same contract as train()."""
import itertools
import json
import types

import numpy as np
import pandas as pd
import pytest
import torch

from bssvae.baselines import (ALL_METHODS, BASELINE_METHODS, baseline_config, method_settings, run_baseline)
from bssvae.config import TrainConfig, make_config
from bssvae.data import MnistTask
from bssvae.errors import BssvaeError, RunDirError
from bssvae.losses import laplace_nll
from bssvae.results import RESULT_COLUMNS

TINY = dict(max_train_images=1024, n_test=60, batch_size=64, checkpoint_every_s=0)


@pytest.fixture(scope="module")
def task():
    return MnistTask.build(n_digits=2, n_test=60, test_seed=0, device="cpu", max_train_images=1024)


def mixture_psnr(task, k=2):
    """PSNR of the estimate that returns the mixture itself as every source."""
    x, _ = task.test_set()
    return task.evaluate(torch.stack([x] * k, dim=1)).psnr


def half_mixture_psnr(task, k=2):
    """PSNR of separating nothing: each of the 2 sources estimated as half the mixture (what MixIT's
    masks of 1/K give before training, for K = 2). NMF scores below it on MNIST, as in the paper."""
    x, _ = task.test_set()
    return task.evaluate(torch.stack([x / 2] * k, dim=1)).psnr


def cfg(method, k=2, **over):
    return baseline_config("smoke", "mnist", method, k, **{**TINY, **over})


def test_every_method_is_registered_and_configurable():
    assert {"vae", "ae"} <= set(ALL_METHODS)
    assert set(BASELINE_METHODS) <= set(ALL_METHODS)
    for m in BASELINE_METHODS:
        assert isinstance(make_config("smoke", "mnist", m, 2), TrainConfig)


def test_run_baseline_refuses_non_baselines(project):
    with pytest.raises(BssvaeError, match="not a baseline"):
        run_baseline(make_config("smoke", "mnist", "vae", 2))
    with pytest.raises(BssvaeError, match="TrainConfig"):
        run_baseline({"method": "nmf"})


def test_method_settings_merge_profile_and_task():
    assert method_settings("nmf", "smoke")["n_fit"] == 1000
    assert method_settings("nmf", "smoke", "audio")["beta_loss"] == "kullback-leibler"
    assert method_settings("nmf", "paper")["beta_loss"] == "frobenius"
    with pytest.raises(BssvaeError):
        method_settings("vae", "smoke")


@pytest.mark.parametrize("method", ["ibm", "irm"])
def test_oracles_are_upper_bounds_and_write_a_run(project, task, method):
    res = run_baseline(cfg(method), task=task)
    row = res["rows"][0]
    assert list(row) == RESULT_COLUMNS
    assert (row["method"], row["n_sources"], row["n_digits"]) == (method, 2, 2)
    if method == "irm":  # non-negative sources summing to the mixture: the IRM returns them exactly
        assert row["psnr"] > 90 and row["ssim"] > 0.999
    else:
        # binary masks cost PSNR where digits overlap: above half the mixture, but only just (15.4 vs 15.0)
        assert row["ssim"] > 0.75 and row["psnr"] > mixture_psnr(task) + 3 and row["psnr"] > half_mixture_psnr(task)
    run = res["run_dir"]
    for name in ("config.json", "metrics.json", "provenance.json", "examples.npz"):
        assert (run / name).exists(), name
    ex = np.load(run / "examples.npz")
    assert set(ex.files) == {"x", "s", method} and ex[method].dtype == np.float16 and ex[method].shape == (12, 2, 784)
    df = pd.read_csv(project / "results" / "smoke" / "mnist.csv")
    assert list(df.columns) == RESULT_COLUMNS and (df["method"] == method).sum() == 1
    # A finished run is not redone.
    stamp = (run / "metrics.json").stat().st_mtime_ns
    again = run_baseline(cfg(method), task=task)
    assert again["rows"] == res["rows"] and (run / "metrics.json").stat().st_mtime_ns == stamp


def test_oracles_need_k_equal_m(project, task):
    with pytest.raises(BssvaeError, match="K must equal M"):
        run_baseline(cfg("ibm", k=3), task=task)


def test_nmf_assignment_is_deterministic_and_complete():
    from bssvae.baselines.nmf import assign_atoms

    rng = np.random.default_rng(0)
    h = rng.random((12, 50))
    a, b = assign_atoms(h, 3, seed=4), assign_atoms(h, 3, seed=4)
    assert np.array_equal(a, b) and set(a.tolist()) == {0, 1, 2}
    with pytest.raises(BssvaeError, match="at least"):
        assign_atoms(h[:2], 3)
    with pytest.raises(BssvaeError):
        assign_atoms(-h, 2)


def test_nmf_beats_the_mixture_and_its_estimates_add_up(project, task):
    from bssvae.baselines.nmf import assign_atoms, fit_dictionary, separate

    res = run_baseline(cfg("nmf"), task=task, settings={"n_fit": 300, "max_iter": 60})
    row = res["rows"][0]
    assert list(row) == RESULT_COLUMNS and row["device"] == "cpu"
    # NMF's bar is only the mixture: on MNIST it scores below half the mixture (as the paper's NMF does on
    # the halved scale), so this checks a sane score; the checks below test what it computes
    assert mixture_psnr(task) + 0.5 < row["psnr"]
    info = json.loads((res["run_dir"] / "metrics.json").read_text())
    assert info["settings"]["n_fit"] == 300 and sum(info["nmf"]["atoms_per_source"]) == 40
    x, _ = task.test_set()
    nmf = fit_dictionary(x, 6, max_iter=50)
    est = separate(nmf, assign_atoms(nmf.components_, 2), x, 2)
    assert est.shape == (60, 2, 784) and torch.allclose(est.sum(1), x, atol=1e-5)


def test_unknown_settings_are_refused(project, task):
    with pytest.raises(BssvaeError, match="unknown keys"):
        run_baseline(cfg("nmf"), task=task, settings={"rank": 3}, write_results=False)


def test_mixit_loss_picks_the_best_assignment():
    from bssvae.baselines.mixit import assignment_matrices, mixit_loss

    a = assignment_matrices(3)
    assert a.shape == (8, 2, 3) and torch.all(a.sum(dim=1) == 1)
    g = torch.Generator().manual_seed(0)
    x1a, x1b, x2 = (torch.rand(4, 10, generator=g) for _ in range(3))
    refs = torch.stack([x1a + x1b, x2], dim=1)
    est = torch.stack([x1a, x2, x1b], dim=1)  # estimates 0 and 2 remix into mixture 0, estimate 1 is mixture 1
    out = mixit_loss(est, refs)
    assert torch.allclose(out.loss, torch.zeros(4), atol=1e-5)
    assert torch.equal(out.assignment, torch.tensor([[0, 1, 0]] * 4))
    swapped = mixit_loss(est, refs.flip(1))  # the loss is invariant to the order of the mixtures
    assert torch.allclose(swapped.loss, torch.zeros(4), atol=1e-5)
    assert torch.equal(swapped.assignment, torch.tensor([[1, 0, 1]] * 4))
    # On arbitrary estimates, the loss is the minimum over all 2^K assignments, found by brute force.
    noisy = est + 0.3 * torch.rand(est.shape, generator=g)
    brute = torch.stack([
        sum(laplace_nll(refs[:, j], noisy[:, [k for k in range(3) if c[k] == j]].sum(1)) for j in (0, 1))
        for c in itertools.product((0, 1), repeat=3)], dim=1)  # (B, 8)
    out = mixit_loss(noisy, refs)
    assert torch.allclose(out.loss, brute.min(dim=1).values)
    best = [list(itertools.product((0, 1), repeat=3))[i] for i in brute.argmin(dim=1).tolist()]
    assert out.assignment.tolist() == [list(c) for c in best]
    with pytest.raises(BssvaeError):
        mixit_loss(est, refs[:, :, :5])


def test_mixit_trains_beats_the_mixture_and_resumes_exactly(project, task):
    full = run_baseline(cfg("mixit", epochs=2), run_dir=project / "full", task=task, write_results=False)
    row = full["rows"][0]
    # the issue's bar, the mixture; at this size (2 epochs) MixIT is still near its start, half the
    # mixture (15.05 vs 15.05 dB when checked), so this tests the plumbing and the loss, not separation
    assert list(row) == RESULT_COLUMNS and row["psnr"] > mixture_psnr(task) + 3
    assert row["psnr"] >= half_mixture_psnr(task) - 0.1  # and training did not make it worse than its start
    hist = pd.read_csv(full["run_dir"] / "history.csv")
    assert {"epoch", "loss", "recon", "kl", "lr", "train_seconds"} <= set(hist.columns) and len(hist) == 2
    assert hist["loss"].iloc[1] < hist["loss"].iloc[0]  # it learns (from masks of 1/K at the start)
    part = run_baseline(cfg("mixit", epochs=2), run_dir=project / "part", task=task, stop_after_epochs=1)
    assert not part["completed"] and part["rows"] == []
    done = run_baseline(cfg("mixit", epochs=2), run_dir=project / "part", task=task, write_results=False)
    assert done["completed"]
    # continued from the checkpoint, not retrained from the same seed: epoch 1 is the first call's record
    first, before = done["history"][0], part["history"][0]
    assert first["train_seconds"] == pytest.approx(before["train_seconds"], rel=1e-9, abs=0)
    assert len(done["history"]) == 2
    assert done["rows"][0]["psnr"] == pytest.approx(row["psnr"], abs=1e-6)
    ex = np.load(done["run_dir"] / "examples.npz")
    x = ex["x"].astype(np.float32)
    assert np.allclose(ex["mixit"].astype(np.float32).sum(1), x, atol=2e-3)  # masks: estimates add up to x


def test_glo_separates_with_two_sources_only(project, task):
    res = run_baseline(cfg("glo", epochs=1), task=task, settings={"test_steps": 10})
    row = res["rows"][0]
    # beats the mixture; at this size (1 epoch, 10 test steps) only just above half the mixture (15.14 vs
    # 15.05 dB when checked), so this tests the two stages and the K = 2 rule, not separation quality
    assert list(row) == RESULT_COLUMNS and row["psnr"] > mixture_psnr(task) + 3 and row["psnr"] > half_mixture_psnr(task)
    hist = pd.read_csv(res["run_dir"] / "history.csv")
    assert list(hist["stage"]) == ["observed", "mixtures"]
    with pytest.raises(BssvaeError, match="K = 2"):
        run_baseline(cfg("glo", k=3, epochs=1), task=task)


def test_glo_observed_digits_never_appear_in_its_mixtures():
    from bssvae.baselines.glo import glo_data

    n = 200
    images = torch.zeros(n, 28, 28, dtype=torch.uint8)
    images.view(n, -1)[torch.arange(n), torch.arange(n)] = 255  # image i lights pixel i only
    fake = types.SimpleNamespace(train_images=images, n_digits=2, source_scale=0.5, name="fake")
    observed, mixtures = glo_data(fake, torch.Generator().manual_seed(0))
    assert observed.shape == (100, 784) and mixtures.shape == (50, 784)
    seen_clean = set(observed.argmax(1).tolist())
    seen_mixed = set(torch.nonzero(mixtures)[:, 1].tolist())
    assert len(seen_clean) == 100 and len(seen_mixed) == 100 and not seen_clean & seen_mixed
    with pytest.raises(BssvaeError, match="no clean training sources"):
        glo_data(types.SimpleNamespace(name="audio"), torch.Generator())


def test_a_baseline_restart_removes_the_old_result(project, task):
    """An interrupted restart must not bring the previous result back as the run's (as for the VAE)."""
    c = cfg("mixit", epochs=2)
    first = run_baseline(c, run_dir=project / "r", task=task, write_results=False)
    restart = run_baseline(c, run_dir=project / "r", task=task, write_results=False, resume=False,
                           stop_after_epochs=1)
    assert not restart["completed"]
    assert not (project / "r" / "metrics.json").exists() and not (project / "r" / "provenance.json").exists()
    assert json.loads((project / "r" / "checkpoint.json").read_text())["epoch"] == 1
    again = run_baseline(c, run_dir=project / "r", task=task, write_results=False)
    assert again["completed"] and again["rows"][0]["psnr"] == pytest.approx(first["rows"][0]["psnr"], abs=1e-6)


def test_a_run_with_other_method_settings_is_refused(project, task):
    """Settings beyond the config (NMF's iterations here) are part of a run: a finished run or a checkpoint
    made with others is not returned or resumed as if it were this one."""
    c, d = cfg("nmf"), project / "nmf-settings"
    run_baseline(c, run_dir=d, task=task, settings={"n_fit": 200, "max_iter": 5}, write_results=False)
    assert json.loads((d / "settings.json").read_text())["max_iter"] == 5
    same = run_baseline(c, run_dir=d, task=task, settings={"n_fit": 200, "max_iter": 5}, write_results=False)
    assert same["completed"]
    with pytest.raises(RunDirError, match=r"other method settings \(differs in \['max_iter'\]\)"):
        run_baseline(c, run_dir=d, task=task, settings={"n_fit": 200, "max_iter": 6}, write_results=False)
    (d / "settings.json").unlink()  # a run from before settings.json: metrics.json's record is used
    with pytest.raises(RunDirError, match=r"differs in \['max_iter'\]"):
        run_baseline(c, run_dir=d, task=task, settings={"n_fit": 200, "max_iter": 6}, write_results=False)
    redo = run_baseline(c, run_dir=d, task=task, settings={"n_fit": 200, "max_iter": 6}, write_results=False,
                        resume=False)
    assert redo["completed"] and json.loads((d / "metrics.json").read_text())["settings"]["max_iter"] == 6
    m = cfg("mixit", epochs=2)  # an interrupted run resumes only with the settings it started with
    run_baseline(m, run_dir=project / "mixit-settings", task=task, stop_after_epochs=1)
    with pytest.raises(RunDirError, match=r"differs in \['input_norm'\]"):
        run_baseline(m, run_dir=project / "mixit-settings", task=task, settings={"input_norm": False})


def test_a_baseline_run_is_finished_only_once_everything_is_written(project, task, monkeypatch):
    """metrics.json marks a run finished, so it is written last: an interruption just before it loses
    nothing (here, while writing the provenance) and the next call completes the run."""
    from bssvae.baselines import common

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    d = project / "ibm-order"
    with monkeypatch.context() as mp:
        mp.setattr(common, "provenance", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_baseline(cfg("ibm"), run_dir=d, task=task, write_results=False)
    assert (d / "examples.npz").exists() and not (d / "metrics.json").exists()
    done = run_baseline(cfg("ibm"), run_dir=d, task=task, write_results=False)
    assert done["completed"] and (d / "provenance.json").exists()


def test_an_unreadable_baseline_result_is_named(project, task):
    d = project / "irm-corrupt"
    run_baseline(cfg("irm"), run_dir=d, task=task, write_results=False)
    (d / "metrics.json").write_text('{"rows": ')
    with pytest.raises(RunDirError, match=r"metrics.json: unreadable"):
        run_baseline(cfg("irm"), run_dir=d, task=task, write_results=False)


def test_a_baseline_whose_model_does_not_take_the_task_is_refused_before_the_directory_is_claimed(project, task):
    """As for the VAE: a refused run leaves no config.json, which would hold the directory to its refused settings."""
    c = cfg("mixit", epochs=1)
    wrong = TrainConfig.from_dict({**c.to_dict(), "model": {**c.to_dict()["model"], "input_dim": 100}})
    for resume in (True, False):
        with pytest.raises(BssvaeError, match=r"model.input_dim: the mnist task has 784 inputs, the model expects 100"):
            run_baseline(wrong, run_dir=project / "r", task=task, write_results=False, resume=resume)
        assert not (project / "r" / "config.json").exists()
