"""Estimating the number of sources from the decoded sources."""
import json

import numpy as np
import pytest
import torch

from bssvae import counting
from bssvae.counting import (confusion_matrix, count_sources, fit_counter, fit_threshold, load_counting,
                             source_shares)
from bssvae.errors import BssvaeError


def synthetic(m_values, k=4, d=50, seed=0):
    """Decoded sources whose first M carry the mixture (shares 1/M, jittered) and the rest ~1% each."""
    g = torch.Generator().manual_seed(seed)
    xs, s_hats = [], []
    for m in m_values:
        base = torch.rand(d, generator=g) + 0.1
        weights = torch.zeros(k)
        weights[:m] = (1.0 + 0.2 * torch.rand(m, generator=g)) / m
        weights[m:] = 0.01 * torch.rand(k - m, generator=g)
        s_hat = weights[:, None] * base[None]
        xs.append(base * weights[:m].sum())
        s_hats.append(s_hat[torch.randperm(k, generator=g)])
    return torch.stack(s_hats), torch.stack(xs)


def test_shares_are_each_sources_part_of_the_mixture():
    x = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    s_hat = torch.tensor([[[0.5, 0.5], [1.0, 2.0]], [[0.1, 0.0], [0.0, 0.0]]])
    r = source_shares(s_hat, x)
    assert torch.allclose(r, torch.tensor([[0.25, 0.75], [0.0, 0.0]]))
    with pytest.raises(BssvaeError):
        source_shares(s_hat, x[:, :1])
    with pytest.raises(BssvaeError):
        source_shares(-s_hat, x)


def test_counting_recovers_m_on_synthetic_decoded_sources():
    m_train = [1, 2, 3] * 40
    s_hat, x = synthetic(m_train, seed=1)
    fit = fit_threshold(source_shares(s_hat, x), torch.tensor(m_train))
    assert fit.accuracy == 1.0 and 0.01 < fit.threshold < 0.33
    m_test = [3, 1, 2, 2, 1, 3] * 10
    s_hat, x = synthetic(m_test, seed=2)
    pred = count_sources(source_shares(s_hat, x), fit.threshold)
    assert pred.tolist() == m_test


def test_fitted_threshold_is_optimal_against_brute_force():
    rng = np.random.default_rng(3)
    for _ in range(5):
        shares = torch.from_numpy(rng.random((60, 4)) ** 3)
        counts = torch.from_numpy(rng.integers(0, 5, 60))
        fit = fit_threshold(shares, counts)
        values = np.sort(shares.flatten().numpy())
        candidates = np.concatenate([[-1.0, 2.0], values, (values[1:] + values[:-1]) / 2])
        best = max(float((count_sources(shares, float(t)) == counts).double().mean()) for t in candidates)
        got = float((count_sources(shares, fit.threshold) == counts).double().mean())
        assert got == pytest.approx(best) == pytest.approx(fit.accuracy)


def test_fit_threshold_validates():
    with pytest.raises(BssvaeError, match="counts"):
        fit_threshold(torch.rand(5, 3), torch.tensor([1, 2]))
    with pytest.raises(BssvaeError, match="integers"):
        fit_threshold(torch.rand(2, 3), torch.tensor([1.0, 2.0]))
    with pytest.raises(BssvaeError, match="threshold"):
        count_sources(torch.rand(2, 3), float("nan"))


def test_confusion_matrix_counts_every_mixture():
    mat = confusion_matrix([1, 1, 2, 3], [1, 2, 2, 7], max_count=4)
    assert mat.shape == (5, 5) and mat.sum() == 4 and mat[1, 1] == 1 and mat[1, 2] == 1 and mat[3, 4] == 1


class RecordingModel:
    """A stand-in model that records what it is asked to separate."""

    def __init__(self, k=4):
        self.k, self.seen = k, []

    def separate(self, x, mask=False, batch_size=1000):
        self.seen.append(x.clone())
        return x.unsqueeze(1).repeat(1, self.k, 1) / self.k


def test_threshold_fitting_uses_only_the_given_training_images(monkeypatch):
    def no_loading(*a, **k):
        raise AssertionError("fit_counter must not load any data set itself")

    monkeypatch.setattr("bssvae.data.load_mnist", no_loading)
    images = torch.full((30, 28, 28), 200, dtype=torch.uint8)
    model = RecordingModel()
    fit = fit_counter(model, images, counts=(1, 2, 3), n_per_count=5)
    assert fit.n == 15 and len(model.seen) == 3
    for m, x in zip((1, 2, 3), model.seen):  # each digit halved, then summed
        assert torch.allclose(x, torch.full_like(x, m * 200 / 255 / 2))


def _fake_run(project, k=4):
    from safetensors.torch import save_file

    from bssvae.config import make_config
    from bssvae.model import VAEBSS
    from bssvae.train import claim_run_dir, default_run_dir

    config = make_config("smoke", "mnist", "vae", k)
    run = default_run_dir(config)
    claim_run_dir(config, run)
    model = VAEBSS(config.model)
    save_file({n: t.contiguous() for n, t in model.state_dict().items()}, str(run / "model.safetensors"))
    return run


def test_evaluate_counting_writes_a_complete_json(project):
    assert load_counting("smoke") is None
    run = _fake_run(project)
    res = counting.evaluate_counting(run, n_per_count=20, n_fit_per_count=20)
    saved = load_counting("smoke")
    assert saved is not None and saved["threshold"] == pytest.approx(res["threshold"])
    conf = np.array(saved["confusion"])
    assert conf.shape == (5, 5) and conf.sum() == 60 and conf[1:4].sum(axis=1).tolist() == [20, 20, 20]
    assert saved["accuracy"] == pytest.approx(np.trace(conf) / 60)
    assert set(saved["per_count"]) == {"1", "2", "3"}
    assert {"vae", "vaem"} == set(saved["per_count"]["2"]["scores"])
    assert "commit" in saved["provenance"]
    assert json.loads((project / "results" / "smoke" / "counting.json").read_text())["n_sources"] == 4


def test_counting_cli_reports_errors(project, capsys):
    assert counting.main([str(project / "missing")]) == 2
    assert "error" in capsys.readouterr().err
