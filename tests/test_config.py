import pytest

from bssvae.config import PROFILES, ModelConfig, TrainConfig, make_config
from bssvae.errors import BssvaeError


def test_paper_defaults():
    c = TrainConfig()
    assert (c.batch_size, c.lr, c.beta, c.beta_warmup_epochs, c.lr_decay) == (32, 2e-4, 0.5, 50.0, 0.9998)
    m = ModelConfig.mnist(3)
    assert m.hidden_dims == (700, 600, 500, 400, 300) and m.latent_dim == 20 and m.n_sources == 3
    a = ModelConfig.audio(2)
    assert a.input_dim == 32768 and a.hidden_dims == (2560, 2048, 1536, 1024, 512) and a.latent_dim == 64


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profiles_build(profile):
    for k in (1, 2, 3, 4):
        c = make_config(profile, n_sources=k)
        assert c.model.n_sources == k and c.profile == profile


def test_ae_is_not_variational():
    assert make_config("smoke", method="ae").model.variational is False
    assert make_config("smoke", method="vae").model.variational is True


def test_roundtrip():
    c = make_config("cpu", n_sources=3, seed=2)
    assert TrainConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize("kwargs, match", [
    (dict(profile="nope"), "profile"),
    (dict(method="nope"), "method"),
    (dict(n_sources=0), "n_sources"),
    (dict(n_sources=2.5), "n_sources"),
    (dict(task="video"), "task"),
    (dict(lr=-1.0), "lr"),
    (dict(epochs=0), "epochs"),
    (dict(precision="fp8"), "precision"),
])
def test_bad_values_are_named(kwargs, match):
    with pytest.raises(BssvaeError, match=match):
        make_config(**kwargs)


def test_unknown_key_in_dict():
    with pytest.raises(BssvaeError, match="unknown keys"):
        TrainConfig.from_dict({"epochz": 3})
