import pytest
import torch

from bssvae.config import ModelConfig
from bssvae.errors import BssvaeError
from bssvae.losses import laplace_nll
from bssvae.metrics import match_sources
from bssvae.model import VAEBSS
from bssvae.refine import refine_latents


@pytest.fixture
def model():
    torch.manual_seed(0)
    m = VAEBSS(ModelConfig(input_dim=64, hidden_dims=(48, 32), latent_dim=4, n_sources=2))
    m.train()
    m(torch.rand(256, 64))  # give BatchNorm running statistics other than the initial ones
    return m


def test_zero_steps_returns_the_encoder_means(model):
    x = torch.rand(5, 64)
    mu, _ = model.eval().encode(x)
    torch.testing.assert_close(refine_latents(model, x, steps=0), mu)


def test_refinement_recovers_sources_the_decoder_can_make(model):
    """Mixtures made by the decoder itself: refining from perturbed latents finds the sources again."""
    model.eval()
    g = torch.Generator().manual_seed(1)
    z_true = torch.randn(16, 2, 4, generator=g)
    with torch.no_grad():
        s_true = model.decode(z_true)
    x = s_true.sum(1)
    z0 = z_true + 0.7 * torch.randn(z_true.shape, generator=g)
    z = refine_latents(model, x, z0=z0, steps=300, lr=0.05)
    with torch.no_grad():
        before, after = model.decode(z0), model.decode(z)
    assert laplace_nll(x, after.sum(1)).mean() < 0.2 * laplace_nll(x, before.sum(1)).mean()
    err_before = (match_sources(before, s_true).matched - s_true).pow(2).mean()
    err_after = (match_sources(after, s_true).matched - s_true).pow(2).mean()
    assert err_after < 0.2 * err_before


def test_mixtures_are_refined_independently_and_weights_untouched(model):
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [p.requires_grad for p in model.parameters()]
    x = torch.rand(6, 64)
    z_all = refine_latents(model, x, steps=20)
    z_parts = torch.cat([refine_latents(model, x[:2], steps=20), refine_latents(model, x[2:], steps=20)])
    torch.testing.assert_close(z_all, z_parts, atol=1e-5, rtol=1e-4)
    assert model.training  # mode restored
    assert [p.requires_grad for p in model.parameters()] == flags
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k])
    assert all(p.grad is None for p in model.parameters())


def test_prior_weight_pulls_latents_to_zero(model):
    x = torch.rand(8, 64)
    free = refine_latents(model, x, steps=50, prior_weight=0.0)
    pulled = refine_latents(model, x, steps=50, prior_weight=1e4)
    assert pulled.norm() < 0.5 * free.norm()


def test_separate_with_refinement_masks_and_runs_under_no_grad(model):
    x = torch.rand(7, 64)
    with torch.no_grad():
        est = model.separate(x, refine_steps=5, batch_size=3)
    assert est.shape == (7, 2, 64)
    torch.testing.assert_close(est.sum(1), x)
    plain = model.separate(x, mask=False)
    refined = model.separate(x, mask=False, refine_steps=5)
    assert not torch.allclose(plain, refined)


@pytest.mark.parametrize("kwargs, match", [({"steps": -1}, "steps"), ({"lr": 0.0}, "lr"),
                                           ({"prior_weight": -1.0}, "prior_weight"),
                                           ({"steps": 2.5}, "steps")])
def test_bad_arguments_are_named(model, kwargs, match):
    with pytest.raises(BssvaeError, match=match):
        refine_latents(model, torch.rand(2, 64), **kwargs)


def _fake_runs(tmp_path, failing: str):
    """Three MNIST VAE runs (one without weights) and a stand-in interpreter that logs each call and
    fails on the run named ``failing``."""
    import os
    import stat

    for name, weights in (("mnist-vae-a", True), ("mnist-vae-b", False), ("mnist-vae-c", True)):
        d = tmp_path / "results" / "p" / "runs" / name
        d.mkdir(parents=True)
        if weights:
            (d / "model.safetensors").write_bytes(b"")
    py = tmp_path / "fakepy"
    py.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/calls\ncase "$*" in *{failing}*) exit 3;; esac\n')
    py.chmod(py.stat().st_mode | stat.S_IEXEC)
    return py, dict(os.environ)


def test_refine_script_scores_every_run_with_weights(tmp_path):
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "refine-runs.sh"
    py, env = _fake_runs(tmp_path, failing="mnist-vae-a")

    def run(*extra):
        (tmp_path / "calls").unlink(missing_ok=True)
        r = subprocess.run(["bash", str(script), "p", "7", str(py), *extra], cwd=tmp_path, env=env,
                           capture_output=True, text=True)
        calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
        return r, calls

    r, calls = run()  # the first run fails: stop there, and say so
    assert r.returncode == 1 and "1 run(s) failed" in r.stderr
    assert calls == ["-m bssvae evaluate --run results/p/runs/mnist-vae-a --refine-steps 7 --write"]
    r, calls = run("--keep-going")  # the device's way: go on to the others, still report the failure
    assert r.returncode == 1 and [c.split()[4] for c in calls] == ["results/p/runs/mnist-vae-a",
                                                                   "results/p/runs/mnist-vae-c"]
    assert "skip results/p/runs/mnist-vae-b (no weights)" in r.stdout
    py, _ = _fake_runs(tmp_path / "ok", failing="none-of-them")
    r = subprocess.run(["bash", str(script), "p", "7", str(py)], cwd=tmp_path / "ok", env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and len((tmp_path / "ok" / "calls").read_text().splitlines()) == 2
    r = subprocess.run(["bash", str(script), "absent", "7", str(py)], cwd=tmp_path, env=env,
                       capture_output=True, text=True)
    assert r.returncode == 1 and "no MNIST VAE runs in results/absent/runs" in r.stderr
