import pytest
import torch

from bssvae.config import ModelConfig
from bssvae.errors import BssvaeError
from bssvae.model import VAEBSS


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_shapes(k):
    model = VAEBSS(ModelConfig.mnist(k))
    out = model(torch.rand(5, 784))
    assert out.s_hat.shape == (5, k, 784)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (5, k, 20)
    torch.testing.assert_close(out.x_hat, out.s_hat.sum(1))
    assert float(out.s_hat.detach().min()) >= 0 and float(out.s_hat.detach().max()) <= 1  # sigmoid outputs


def test_table_one_sizes():
    model = VAEBSS(ModelConfig.mnist(2))
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    sizes = [(m.in_features, m.out_features) for m in linears]
    assert sizes[:6] == [(784, 700), (700, 600), (600, 500), (500, 400), (400, 300), (300, 80)]
    assert sizes[6:] == [(20, 300), (300, 400), (400, 500), (500, 600), (600, 700), (700, 784)]
    n_params = sum(p.numel() for p in model.parameters())
    assert 3.0e6 < n_params < 3.5e6  # "about 3.2 M parameters" in the authors' code


def test_audio_config_is_same_class():
    cfg = ModelConfig(input_dim=256, hidden_dims=(64, 32), latent_dim=8, n_sources=2)
    out = VAEBSS(cfg)(torch.rand(3, 256))
    assert out.s_hat.shape == (3, 2, 256)


def test_eval_is_deterministic_and_ae_uses_mean():
    model = VAEBSS(ModelConfig.mnist(2)).eval()
    x = torch.rand(4, 784)
    torch.testing.assert_close(model(x).s_hat, model(x).s_hat)
    ae = VAEBSS(ModelConfig.mnist(2, variational=False)).train()
    out = ae(x)
    torch.testing.assert_close(out.z, out.mu)


def test_separate_validates_and_masks():
    model = VAEBSS(ModelConfig.mnist(3))
    x = torch.rand(7, 784)
    est = model.separate(x)
    assert est.shape == (7, 3, 784)
    torch.testing.assert_close(est.sum(1), x)
    as_numpy = model.separate(x.double().numpy())  # numpy's default float64 is accepted
    assert as_numpy.dtype == torch.float32
    torch.testing.assert_close(as_numpy, est)
    with pytest.raises(BssvaeError, match="784"):
        model.separate(torch.rand(2, 100))
    with pytest.raises(BssvaeError, match="finite"):
        model.separate(torch.full((2, 784), float("nan")))
    with pytest.raises(BssvaeError, match="non-empty"):
        model.separate(torch.zeros(0, 784))
    with pytest.raises(BssvaeError, match=">= 0"):
        model.separate(-torch.ones(2, 784))
