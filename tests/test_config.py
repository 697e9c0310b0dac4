import pytest
import torch

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
    (dict(device="tpu"), "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
    (dict(device="cuda:first"), "device: expected"),
    (dict(lr_decay=1.5), "lr_decay"),
    (dict(lr_decay=0.0), "lr_decay"),
    (dict(n_digits=3, n_test=5000), "n_test: at most 3333 test mixtures of 3 digits"),
    (dict(n_digits=10001), r"n_digits: .* M \(-M, --n-digits\) is at most 10000, got 10001"),
    (dict(lr=float("inf")), "lr: expected a finite, positive learning rate, got inf"),
    (dict(lr=0.0), "lr: expected a finite, positive learning rate, got 0.0"),
    (dict(lr_decay=float("nan")), r"lr_decay: expected a factor in \(0, 1\] applied each epoch, got nan"),
    (dict(beta=float("inf")), "beta: expected a finite non-negative number, got inf"),
    (dict(beta_warmup_epochs=float("inf")), "beta_warmup_epochs: expected a finite"),
    (dict(lr_warmup_epochs=float("nan")), "lr_warmup_epochs: expected a finite"),
    (dict(checkpoint_every_s=float("inf")), "checkpoint_every_s: expected a finite"),
    (dict(model=dict(hidden_dims=(64, "32"))), r"hidden_dims\[1\]: expected an integer, got str '32'"),
])
def test_bad_values_are_named(kwargs, match):
    with pytest.raises(BssvaeError, match=match):
        make_config(**kwargs)


def test_unknown_key_in_dict():
    with pytest.raises(BssvaeError, match="unknown keys"):
        TrainConfig.from_dict({"epochz": 3})


@pytest.mark.parametrize("profile", ["cpu", "paper", "authors"])
@pytest.mark.parametrize("m, n_test", [(1, 5000), (2, 5000), (3, 3333), (4, 2500)])
def test_test_set_size_fits_the_mnist_test_images(profile, m, n_test):
    """5,000 pairs; mixtures of M digits use each of the 10,000 test images at most once."""
    assert make_config(profile, n_digits=m).n_test == n_test
    assert make_config(profile, n_digits=m, n_test=100).n_test == 100  # an explicit size is kept


def test_method_and_model_must_agree():
    vae = make_config("smoke", method="vae")
    with pytest.raises(BssvaeError, match="model.variational: method 'ae' needs variational=False"):
        TrainConfig.from_dict(dict(vae.to_dict(), method="ae"))


@pytest.fixture
def native_bf16(monkeypatch):
    """Make the CPU look like one with (True) or without (False) native bf16."""
    import bssvae.train

    def set_native(flag: bool):
        monkeypatch.setattr(bssvae.train, "cpu_prefers_bf16", lambda: flag)
    return set_native


def test_auto_precision_on_a_cpu_follows_the_measured_bf16_speed(monkeypatch):
    """bf16 only where the CPU has bf16 instructions and a bf16 step measured faster by the margin; a CPU
    without them is not timed."""
    import bssvae.train

    timed = []

    def speedup(value):
        return lambda: timed.append(value) or value

    cpu = torch.device("cpu")
    for flags, measured, expected in ((True, 2.1, "bf16"),    # AMD EPYC with AVX512-BF16
                                      (True, 0.7, "fp32"),    # Intel Xeon reporting AVX512-BF16, AMX hidden
                                      (True, bssvae.train.BF16_MIN_SPEEDUP, "bf16"),
                                      (False, 9.9, "fp32")):  # AVX2: never timed
        monkeypatch.setattr(bssvae.train, "cpu_has_native_bf16", lambda f=flags: f)
        monkeypatch.setattr(bssvae.train, "cpu_bf16_speedup", speedup(measured))
        assert bssvae.train.resolve_precision("auto", cpu) == expected
        assert bssvae.train.resolve_precision("fp32", cpu) == "fp32"
    assert timed == [2.1, 0.7, bssvae.train.BF16_MIN_SPEEDUP]


def test_the_bf16_probe_measures_without_disturbing_the_run():
    """It returns a positive ratio, leaves torch's random state and threads alone, and is measured once."""
    from bssvae.results import cpu_bf16_speedup, hardware, has_native_bf16

    threads, state = torch.get_num_threads(), torch.get_rng_state()
    ratio = cpu_bf16_speedup()
    assert 0 < ratio < 100 and torch.equal(torch.get_rng_state(), state) and torch.get_num_threads() == threads
    assert cpu_bf16_speedup() == ratio  # cached: one process decides once
    hw = hardware()
    assert ("bf16_step_speedup" in hw) == has_native_bf16(hw["cpu_flags"])


def test_the_bf16_probe_times_one_thread_in_its_cpu_time(monkeypatch):
    """Other processes on the cores cannot move the ratio: every step is timed on the thread's own CPU clock
    while torch runs on that one thread, and the run's thread count comes back, even when a step fails."""
    import time

    from bssvae.results import cpu_bf16_speedup

    seen = []
    clock = time.thread_time
    monkeypatch.setattr(time, "thread_time", lambda: seen.append(torch.get_num_threads()) or clock())
    monkeypatch.setattr(time, "perf_counter", lambda: pytest.fail("the probe read the wall clock"))
    threads = torch.get_num_threads()
    cpu_bf16_speedup.cache_clear()
    try:
        assert cpu_bf16_speedup(repeats=2) > 0
        assert seen and set(seen) == {1} and torch.get_num_threads() == threads
        cpu_bf16_speedup.cache_clear()
        monkeypatch.setattr(torch, "autocast", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("broken")))
        with pytest.raises(RuntimeError, match="broken"):
            cpu_bf16_speedup(repeats=2)
        assert torch.get_num_threads() == threads
    finally:
        cpu_bf16_speedup.cache_clear()


def _recipe(c):
    return c.precision, c.optimizer, c.epochs, c.batch_size, c.lr, c.lr_schedule


def test_cpu_recipe_follows_the_precision_it_trains_in(native_bf16):
    """precision auto is resolved when the config is built, and the recipe that goes with it is taken: in bf16
    Muon's for the VAE and the AE (VAE_RECIPES), held at its peak (wsd), Adam's along a cosine for the baselines that
    train; in fp32 Adam for all, the VAE and
    the AE at twice the baselines' peak, held (wsd)."""
    from bssvae.baselines import baseline_config

    native_bf16(True)
    for method in ("vae", "ae"):
        assert _recipe(make_config("cpu", "mnist", method, device="cpu")) == ("bf16", "muon", 320, 1024, 2.8e-3, "wsd")
    assert _recipe(make_config("cpu", "mnist", "mixit", device="cpu")) == ("bf16", "adam", 280, 512, 2e-3, "cosine")
    assert _recipe(baseline_config("cpu", "mnist", "glo", device="cpu")) == ("bf16", "adam", 60, 512, 2e-3, "cosine")
    # bssvae train --method glo builds it with make_config: GLO's 60 epochs per stage stay there too, and an explicit
    # value still wins over them
    assert _recipe(make_config("cpu", "mnist", "glo", device="cpu")) == ("bf16", "adam", 60, 512, 2e-3, "cosine")
    assert make_config("cpu", "mnist", "glo", device="cpu", epochs=5).epochs == 5
    assert make_config("cpu", "audio", device="cpu").optimizer == "adam"  # no recipe for audio
    native_bf16(False)
    for method in ("vae", "ae"):
        assert _recipe(make_config("cpu", "mnist", method, device="cpu")) == ("fp32", "adam", 110, 256, 2e-3, "wsd")
    assert _recipe(make_config("cpu", "mnist", "mixit", device="cpu")) == ("fp32", "adam", 110, 256, 1e-3, "cosine")
    assert _recipe(make_config("cpu", "mnist", "glo", device="cpu")) == ("fp32", "adam", 60, 256, 1e-3, "cosine")
    # Naming Adam, the fp32 recipe's optimizer, keeps the VAE's fp32 recipe; naming Muon gives that of every method.
    assert _recipe(make_config("cpu", device="cpu", optimizer="adam")) == ("fp32", "adam", 110, 256, 2e-3, "wsd")
    assert _recipe(make_config("cpu", device="cpu", optimizer="muon")) == ("fp32", "muon", 110, 256, 1e-3, "cosine")


def test_explicit_values_win_over_the_precision_recipe(native_bf16):
    native_bf16(True)
    c = make_config("cpu", device="cpu", precision="fp32")  # the fp32 recipe on a native-bf16 CPU
    assert _recipe(c) == ("fp32", "adam", 110, 256, 2e-3, "wsd")
    c = make_config("cpu", device="cpu", precision="fp32", lr=1e-3, lr_schedule="cosine")  # the baselines' peak
    assert _recipe(c) == ("fp32", "adam", 110, 256, 1e-3, "cosine")
    c = make_config("cpu", device="cpu", batch_size=128, epochs=3)
    assert _recipe(c) == ("bf16", "muon", 3, 128, 2.8e-3, "wsd")
    # Naming Adam asks for the recipe of every method (Adam's), not Muon's batch and learning rate.
    assert _recipe(make_config("cpu", device="cpu", optimizer="adam")) == ("bf16", "adam", 280, 512, 2e-3, "cosine")
    assert _recipe(make_config("cpu", device="cpu", optimizer="muon", lr=1e-3)) == (
        "bf16", "muon", 320, 1024, 1e-3, "wsd")
    native_bf16(False)
    c = make_config("cpu", device="cpu", precision="bf16")  # asked for: bf16's recipe, even where slow
    assert _recipe(c) == ("bf16", "muon", 320, 1024, 2.8e-3, "wsd")


def test_other_profiles_keep_auto_precision_for_the_run():
    c = make_config("smoke", precision="auto")
    assert c.precision == "auto" and c.batch_size == 256
