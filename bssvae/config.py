"""Configuration as data: the model's sizes (Table I), the training recipe, and named profiles.

The paper's values are the defaults and say so. A profile is a named set of overrides per task:

- ``smoke``: seconds; used by the tests and by CI's book build.
- ``cpu``: the best quality we reach on a 2-core CPU in about 15 minutes per model where bf16 products
  are fast (15 to 16 minutes on a 2-core Xeon with AMX; about twice that on a 2-core Zen 4 EPYC).
- ``paper``: Table I's sizes at the authors' scale of training, meant for a GPU.
- ``authors``: the authors' own recipe (batch 64, Adam 2e-4, lr x 0.9998 per epoch, beta warm-up
  over 50 epochs), for side-by-side comparisons; set ``epochs`` yourself.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import BssvaeError, check_bool, check_choice, check_int, check_real

TASKS = ("mnist", "audio")
METHODS = ("vae", "ae")  # trained by bssvae.train; baselines register more in bssvae.baselines
PRECISIONS = ("auto", "fp32", "bf16")
#: Devices a run may name: ``auto`` (the GPU when present), ``cpu``, ``cuda`` or ``cuda:N``.
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
LR_SCHEDULES = ("cosine", "linear", "wsd", "exponential", "constant")
#: The schedules that end at zero when the run ends (at its last epoch, or at its budget): bssvae.train.lr_at.
DECAYING_SCHEDULES = ("cosine", "linear", "wsd")
#: ``wsd`` (warm-up, stable, decay) holds the peak, then falls in a straight line to zero over this last fraction of
#: the run: the default of :attr:`TrainConfig.wsd_decay_fraction`.
WSD_DECAY_FRACTION = 0.2
OPTIMIZERS = ("adam", "muon")  # built by bssvae.optim.make_optimizer
MUON_LAYERS = ("hidden", "all")  # which weight matrices Muon updates: bssvae.optim.muon_matrices
#: The settings of optimizer "muon" (fields of TrainConfig), which a run with another optimizer leaves at their defaults.
MUON_FIELDS = ("muon_layers", "muon_ns_steps", "muon_momentum", "muon_lr_scale", "muon_weight_decay")
MNIST_TEST_IMAGES = 10000  # MNIST's test set; each test mixture uses its images once


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of the VAE-BSS network (paper, Table I). The decoder mirrors the encoder.

    Defaults are Table I's MNIST row: 784-700-600-500-400-300, 20 latent dimensions per source.
    """

    input_dim: int = 784
    hidden_dims: tuple[int, ...] = (700, 600, 500, 400, 300)
    latent_dim: int = 20
    n_sources: int = 2
    variational: bool = True  # False gives the AE baseline: decode the mean, no KL

    def __post_init__(self):
        check_int("input_dim", self.input_dim, minimum=1)
        check_int("latent_dim", self.latent_dim, minimum=1)
        check_int("n_sources", self.n_sources, minimum=1)
        dims = self.hidden_dims
        if not isinstance(dims, (list, tuple)) or not dims:
            raise BssvaeError(f"hidden_dims: expected a list of positive layer sizes, got {dims!r}")
        object.__setattr__(self, "hidden_dims", tuple(check_int(f"hidden_dims[{i}]", h, minimum=1)
                                                      for i, h in enumerate(dims)))
        check_bool("variational", self.variational)

    @classmethod
    def mnist(cls, n_sources: int = 2, variational: bool = True) -> "ModelConfig":
        """Table I, MNIST row."""
        return cls(784, (700, 600, 500, 400, 300), 20, n_sources, variational)

    @classmethod
    def audio(cls, n_sources: int = 2, variational: bool = True) -> "ModelConfig":
        """Table I, MUMS row: 32768 spectrogram bins, 64 latent dimensions per source."""
        return cls(32768, (2560, 2048, 1536, 1024, 512), 64, n_sources, variational)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden_dims"] = list(self.hidden_dims)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        """The model a stored config describes; its sizes must all be there (they shape the weights)."""
        if not isinstance(d, dict):
            raise BssvaeError(f"model: expected a mapping of the model's sizes, got {type(d).__name__} {d!r}")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise BssvaeError(f"model: unknown keys {unknown}; known keys are {known}")
        missing = [k for k in ("input_dim", "hidden_dims", "latent_dim") if k not in d]
        if missing:
            raise BssvaeError(f"model: missing keys {missing}, which set the network's sizes")
        return cls(**d)


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Defaults are the authors' recipe (jundsp/VAE-BSS) where it is known.

    Attributes:
        task: ``"mnist"`` or ``"audio"``.
        method: ``"vae"`` (gives the VAE and VAEM rows) or ``"ae"``.
        n_sources: K, the number of latent sources the model assumes.
        n_digits: M, the number of true sources mixed in each training and test mixture.
        epochs: passes over the training sources (one epoch = every source used once).
        batch_size: mixtures per step (authors: 32, their batches of 64 images split in half).
        lr: the optimizer's learning rate (authors: 2e-4).
        optimizer: ``adam`` (the authors', every profile's but the ``cpu`` profile's VAE and AE in bf16:
            :data:`VAE_RECIPES`) or ``muon`` (Muon on the hidden layers' weight matrices, Adam on the rest;
            :mod:`bssvae.optim`).
        muon_layers: with ``optimizer="muon"``, the weight matrices Muon updates: ``hidden`` (those
            between hidden layers, as Muon is meant for) or ``all`` (every Linear layer's, the encoder's
            first, the head and the decoder's last too); Adam updates the rest.
        muon_ns_steps: with ``optimizer="muon"``, Muon's Newton-Schulz iterations per step (default 5,
            PyTorch's; :func:`bssvae.optim.newton_schulz_flops` counts their cost).
        muon_momentum: with ``optimizer="muon"``, the decay of Muon's (Nesterov) momentum, in [0, 1)
            (default 0.95, PyTorch's).
        muon_lr_scale: with ``optimizer="muon"``, Muon's learning rate as a multiple of ``lr``, which the Adam
            beside it takes (default 1: one learning rate for both); the schedule scales both alike.
        muon_weight_decay: with ``optimizer="muon"``, the decoupled weight decay of Muon's matrices: each step
            multiplies them by ``1 - lr_muon * muon_weight_decay`` before the update, ``lr_muon`` being Muon's rate
            at that step (default 0: none, as Adam has none here; PyTorch's Muon defaults to 0.1).
        lr_schedule: ``exponential`` (authors: x ``lr_decay`` each epoch), ``cosine`` (half a cosine down to
            zero at the run's end), ``linear`` (a straight line down to zero at the run's end), ``wsd`` (the peak
            held, then a straight line down to zero over the last ``wsd_decay_fraction`` of the steps after
            the warm-up, or of the budget) or ``constant``.
        wsd_decay_fraction: with ``lr_schedule="wsd"``, the last fraction of the run, in (0, 1], over which the
            learning rate falls from its peak to zero (default :data:`WSD_DECAY_FRACTION`; 1 is ``linear``).
        beta: weight of the KL term (paper: 0.5).
        beta_warmup_epochs: beta rises linearly from 0 over this many epochs (authors: 50).
        lr_warmup_epochs: linear learning-rate warm-up (0: none).
        budget_minutes: a training-time budget, or None (the run ends after ``epochs``). With a
            budget the run stops at the first step that reaches it, or after ``epochs`` if that comes
            first, and a decaying schedule (cosine, linear, wsd) follows whichever of the two is further spent,
            so that its learning rate reaches zero when the run ends however fast the machine runs. Where a
            budgeted run stops depends on the machine's speed, so it is not bit-reproducible; it
            records the epochs it trained (``epochs`` of its results rows).
        precision: ``fp32``, ``bf16`` (autocast for matrix products; weights stay fp32), or ``auto``:
            bf16 where the device trains faster in it (a CUDA GPU with bf16; a CPU with AMX or
            AVX512-BF16 on which a bf16 step measured faster, :func:`bssvae.train.cpu_prefers_bf16`),
            fp32 elsewhere (on an AVX2-only CPU a bf16 step ran 11-17x slower; on a Xeon reporting
            AVX512-BF16 whose AMX its virtual machine hid, 0.72x as fast: results/bench.json).
        n_test: test mixtures (5000 pairs from the 10000 test images, each image used once; at most
            10000 // n_digits, which :func:`make_config` uses for mixtures of more than 2 digits).
        test_seed: seed of the fixed test set; independent of ``seed`` so all runs share it.
    """

    task: str = "mnist"
    method: str = "vae"
    n_sources: int = 2
    n_digits: int = 2
    seed: int = 0
    epochs: int = 100
    batch_size: int = 32
    lr: float = 2e-4
    optimizer: str = "adam"
    muon_layers: str = "hidden"
    muon_ns_steps: int = 5
    muon_momentum: float = 0.95
    muon_lr_scale: float = 1.0
    muon_weight_decay: float = 0.0
    lr_schedule: str = "exponential"
    wsd_decay_fraction: float = WSD_DECAY_FRACTION
    lr_decay: float = 0.9998
    lr_warmup_epochs: float = 0.0
    budget_minutes: float | None = None
    beta: float = 0.5
    beta_warmup_epochs: float = 50.0
    precision: str = "fp32"
    compile: bool = False
    n_test: int = 5000
    test_seed: int = 0
    max_train_images: int | None = None  # None: all 60000 (smoke uses a subset)
    device: str = "auto"
    checkpoint_every_s: float = 60.0
    profile: str = "custom"
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self):
        if not isinstance(self.model, ModelConfig):
            raise BssvaeError(f"model: expected a ModelConfig (a mapping of sizes in a file), got "
                              f"{type(self.model).__name__} {self.model!r}")
        check_choice("task", self.task, TASKS)
        from .baselines import ALL_METHODS  # late import: baselines import config

        check_choice("method", self.method, ALL_METHODS)
        for name, minimum in (("n_sources", 1), ("n_digits", 1), ("seed", 0), ("epochs", 1), ("batch_size", 1),
                              ("n_test", 1)):  # stored as int: a seed of 1.0 names the run "seed1", not "seed1.0"
            object.__setattr__(self, name, check_int(name, getattr(self, name), minimum=minimum))
        check_choice("precision", self.precision, PRECISIONS)
        check_device_name(self.device)
        check_choice("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("muon_layers", self.muon_layers, MUON_LAYERS)
        object.__setattr__(self, "muon_ns_steps", check_int("muon_ns_steps", self.muon_ns_steps, minimum=1))
        if self.muon_ns_steps > 99:  # torch.optim.Muon refuses 100 and more
            raise BssvaeError(f"muon_ns_steps: expected at most 99 Newton-Schulz iterations, got {self.muon_ns_steps}")
        m = check_real("muon_momentum", self.muon_momentum, expected="a number in [0, 1)", low=0, high=1,
                       high_open=True)
        object.__setattr__(self, "muon_momentum", m)  # a numpy scalar made a Python number: config.json stays JSON
        scale = check_real("muon_lr_scale", self.muon_lr_scale, expected="a positive multiple of lr", low=0,
                           low_open=True)
        object.__setattr__(self, "muon_lr_scale", float(scale))
        decay = check_real("muon_weight_decay", self.muon_weight_decay, expected="a finite non-negative number", low=0)
        object.__setattr__(self, "muon_weight_decay", float(decay))
        changed = [f for f in MUON_FIELDS if getattr(self, f) != getattr(TrainConfig, f)]
        if self.optimizer != "muon" and changed:
            raise BssvaeError(f"{', '.join(changed)}: settings of optimizer 'muon', but the run's optimizer is "
                              f"{self.optimizer!r}")
        f = check_real("wsd_decay_fraction", self.wsd_decay_fraction, expected="a fraction of the run in (0, 1]",
                       low=0, low_open=True, high=1)
        object.__setattr__(self, "wsd_decay_fraction", float(f))
        if self.lr_schedule != "wsd" and f != WSD_DECAY_FRACTION:
            raise BssvaeError(f"wsd_decay_fraction: a setting of lr_schedule 'wsd', but the run's schedule is "
                              f"{self.lr_schedule!r}")
        # finite: inf trains to NaN, and config.json would hold Infinity, which is not JSON
        for name in ("beta", "beta_warmup_epochs", "lr_warmup_epochs", "checkpoint_every_s"):
            object.__setattr__(self, name, check_real(name, getattr(self, name), expected="a finite non-negative number",
                                                      low=0))
        object.__setattr__(self, "lr", check_real("lr", self.lr, expected="a finite, positive learning rate", low=0,
                                                  low_open=True))
        object.__setattr__(self, "lr_decay", check_real("lr_decay", self.lr_decay,
                                                        expected="a factor in (0, 1] applied each epoch", low=0,
                                                        low_open=True, high=1))
        object.__setattr__(self, "test_seed", check_int("test_seed", self.test_seed, minimum=0))
        if self.max_train_images is not None:
            object.__setattr__(self, "max_train_images",
                               check_int("max_train_images", self.max_train_images, minimum=1))
        check_bool("compile", self.compile)
        if not isinstance(self.profile, str):
            raise BssvaeError(f"profile: expected a profile's name, got {self.profile!r}")
        if self.budget_minutes is not None:
            object.__setattr__(self, "budget_minutes", check_real(
                "budget_minutes", self.budget_minutes, expected="a positive number of minutes or None", low=0,
                low_open=True))
        if self.task == "mnist" and self.n_test * self.n_digits > MNIST_TEST_IMAGES:
            raise BssvaeError(f"n_test: at most {MNIST_TEST_IMAGES // self.n_digits} test mixtures of {self.n_digits} "
                              f"digits can use each of the {MNIST_TEST_IMAGES} MNIST test images once, "
                              f"got {self.n_test}")
        if self.method in ("vae", "ae") and self.model.variational != (self.method == "vae"):
            raise BssvaeError(f"model.variational: method {self.method!r} needs variational="
                              f"{self.method == 'vae'}, got {self.model.variational}")
        if self.model.n_sources != self.n_sources:
            raise BssvaeError(
                f"model.n_sources: expected {self.n_sources} (= n_sources), got {self.model.n_sources}"
            )

    @property
    def run_name(self) -> str:
        return f"{self.task}-{self.method}-K{self.n_sources}-M{self.n_digits}-seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BssvaeError(f"config: unknown keys {unknown}; known keys are {sorted(known)}")
        d = dict(d)
        if "model" in d and not isinstance(d["model"], ModelConfig):
            d["model"] = ModelConfig.from_dict(d["model"])
        return cls(**d)


# Overrides per profile and task. Values not named here are TrainConfig's (the authors') defaults.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "mnist": dict(epochs=2, batch_size=256, lr=1e-3, lr_schedule="cosine", beta_warmup_epochs=1,
                      n_test=500, max_train_images=4096, checkpoint_every_s=0),
        # 64 bins x 16 frames at 8 kHz (0.12 s; bssvae.audio.SPECTROGRAMS), a tiny network: seconds.
        "audio": dict(epochs=2, batch_size=32, lr=1e-3, lr_schedule="cosine", beta_warmup_epochs=1,
                      n_test=16, checkpoint_every_s=0,
                      model=dict(input_dim=1024, hidden_dims=(128, 64), latent_dim=8)),
    },
    "cpu": {
        # About 15 minutes on 2 CPU cores. precision auto: bf16 on CPUs where a bf16 step measured
        # faster (bssvae.train.cpu_prefers_bf16), fp32 elsewhere, and the recipe follows the precision
        # (PRECISION_RECIPES).
        # These values are fp32's, every method's but the VAE's and the AE's peak and schedule (VAE_RECIPES):
        # 110 epochs at ~4,000 mixtures/s on an AVX2 CPU (python -m bench; see the book's performance page).
        # No beta warm-up: measured on this CPU (book, Recipe choices; results/ablations), starting
        # at beta = 0.5 separates from the first epochs (VAEM 18.4 dB after 5 minutes, 19.3 after
        # 15), while a 10-epoch warm-up from beta = 0 first learns a split that does not follow the
        # digits and stays near the no-separation score of 14.9 dB (14.3 after 5 minutes, 15.2
        # after 15).
        "mnist": dict(epochs=110, batch_size=256, lr=1e-3, lr_schedule="cosine", beta_warmup_epochs=0,
                      precision="auto"),
        # Audio keeps a warm-up: in 5-minute trials it separated better with it than without
        # (results/ablations/short-trials).
        "audio": dict(epochs=3000, batch_size=64, lr=1e-3, lr_schedule="cosine", beta_warmup_epochs=750,
                      n_test=500, model=dict(input_dim=8192, hidden_dims=(512, 256, 128), latent_dim=32)),
    },
    "paper": {
        # Table I sizes and our recipe at a GPU budget: on one H100, the 18 runs of the Table II
        # sweep (vae and ae, K = 2, 3, 4, 3 seeds) train side by side in about 7 minutes. Batch 512
        # because a step of this small model is launch-bound on a GPU: twice the mixtures per step
        # cost almost no extra time. (The authors trained "a few thousand epochs" at batch 64.)
        "mnist": dict(epochs=250, batch_size=512, lr=1e-3, lr_schedule="cosine", beta_warmup_epochs=10,
                      precision="bf16"),
        # Table I's audio row (32768 = 512 bins x 64 frames at 16 kHz -> 2560-2048-1536-1024-512 ->
        # 2 x 64K), 189 M parameters. 302 training notes give 151 mixtures (2 steps) per epoch:
        # 2,750 epochs = 5,500 steps, beta warmed up over the first quarter: sized (from a measured
        # 23 ms per epoch alone) so that 3 VAE and 3 MixIT runs share one H100 in about 5 minutes.
        # Not tuned: a longer budget is the first thing to try.
        "audio": dict(epochs=2750, batch_size=64, lr=5e-4, lr_schedule="cosine", beta_warmup_epochs=687,
                      precision="bf16", n_test=1000),
    },
    "authors": {
        "mnist": dict(),
        "audio": dict(n_test=1000),  # 102 test notes make ~4600 distinct pairs, not 5000
    },
}


#: What a profile changes for the precision a run trains in, on top of its PROFILES entry. A profile
#: with an entry here resolves ``precision="auto"`` when the config is built (see make_config), so
#: that config.json records the precision and the recipe that go together.
PRECISION_RECIPES: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "cpu": {
        # Native bf16 (measured on a 2-core AVX512-BF16 EPYC, python -m bench): a bf16 step runs
        # ~2x faster than fp32 and learns the same (results/ablations/bf16-cpu). In 15-minute trials
        # batch 512 with lr 2e-3 reached VAEM 20.31 dB against 19.85 for batch 256 beside it, and
        # passed the authors' 15-minute 18.7 dB after 2 minutes (results/ablations/short-trials-bf16).
        # 280 epochs of it took 16.4 to 18.2 minutes there, VAEM 20.09 dB over 3 seeds (the VAE's runs,
        # results/ablations/cpu-adam-bf16).
        # These values are now those of the baselines that train (MixIT, GLO: Adam on networks of their
        # own; GLO keeps its own epochs per stage, baselines.CONFIG_OVERRIDES) and of a VAE or AE run that
        # names --optimizer adam; the VAE and the AE take VAE_RECIPES.
        "mnist": {"bf16": dict(epochs=280, batch_size=512, lr=2e-3)},
    },
}

#: The peak of Muon's bf16 recipe for the ``cpu`` profile's VAE and AE (batch 1,024) as it was chosen along the cosine
#: (results/ablations/muon-tuning), which the recipe also held (wsd) until it took half of it (:data:`VAE_RECIPES`). The
#: recipe's runs and ablations until then trained at it; the book and the tests find them by it.
MUON_COSINE_PEAK = 5.6e-3

#: What a profile's precision recipe changes, on top of :data:`PRECISION_RECIPES`, for the methods
#: ``bssvae.train`` trains (:data:`METHODS`: the VAE and the AE), whose network has the hidden weight
#: matrices that Muon updates (:mod:`bssvae.optim`), unless the run names another optimizer.
VAE_RECIPES: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "cpu": {
        # Muon with batch 1,024 at 5.6e-3 (results/ablations/muon-tuning), in bf16, which its Newton-Schulz
        # iterations need natively: given 15 minutes of the 2-core Intel Xeon with AMX (bssvae train
        # --minutes 15), seeds 0, 1 and 2 trained 330, 329 and 326 epochs and reached VAEM 20.80, 20.99
        # and 20.95 dB, where the Adam recipe above reached 20.33, 19.97 and 19.97 in 280 epochs (16.4 to
        # 18.2 minutes on the AVX512-BF16 EPYC; results/ablations/cpu-adam-bf16). Its 320 epochs along the cosine took
        # 15.1 to 16.0 minutes on that Xeon, VAEM 20.81, 20.97 and 20.99 dB for seeds 0, 1 and 2
        # (results/ablations/cpu-muon-cosine, results/cpu's runs until those below).
        # Held at its peak until the last 20 % of the epochs (wsd) instead: on a Zen 4 EPYC
        # (results/ablations/schedule-320-epyc) seeds 0, 1 and 2 reached 21.31, 21.38 and 21.31 dB, each above every
        # seed of the cosine. Trained again with it on a Zen 5 EPYC (results/ablations/cpu-muon-wsd-5.6e-3, 13.9 to 14.6
        # minutes each), the three seeds reproduced those runs to the last bit (VAEM 21.31, 21.38 and 21.31 dB; 22.80,
        # 22.88 and 22.80 refined).
        # Held at 5.6e-3, the peak chosen along the cosine, for 80 % of the epochs: half of it, 2.8e-3, gained on every
        # seed at the same 320 epochs on the Zen 5 (results/ablations/lr-peak-320-zen5: +0.21, +0.08 and +0.23 dB,
        # refined +0.41, +0.34 and +0.59), where 4e-3 and 2e-3 gained less and 8e-3 lost a decibel. The profile holds
        # 2.8e-3 since; its runs at 5.6e-3 are kept in results/ablations/cpu-muon-wsd-5.6e-3. Trained again at it on the
        # Zen 5 (results/cpu, 14.3 to 15.6 minutes each), the three seeds reproduced those runs to the last bit (VAEM
        # 21.52, 21.46 and 21.54 dB; 23.21, 23.22 and 23.39 refined).
        # In fp32 (a CPU whose bf16 products are no faster, where Muon's bf16 Newton-Schulz iterations would cost
        # more than they give), Adam at twice the recipe's peak, held until the last 20 % of the steps (wsd):
        # the profile's 110 epochs on an AVX2-only Zen 3 EPYC (results/ablations/fp32-wsd-zen3) reached VAEM
        # 19.86, 19.61 and 19.62 dB for seeds 0, 1 and 2, where the cosine at 1e-3 had reached 19.33, 19.57 and
        # 19.33 (results/ablations/cpu-fp32-avx2; its seed 0, trained again on the Zen 3, scored the same to the
        # bit), having gained on every seed given 3 and 15 minutes (results/ablations/fp32-zen3). The mean of
        # three seeds' gains, +0.28 dB, does not exclude zero. The baselines keep the cosine at 1e-3 above.
        "mnist": {"bf16": dict(epochs=320, batch_size=1024, lr=2.8e-3, optimizer="muon", lr_schedule="wsd"),
                  "fp32": dict(optimizer="adam", lr=2e-3, lr_schedule="wsd")},
    },
}


def schedule_label(config: dict) -> str:
    """A run's learning-rate schedule as the tables name it, from its config (a dict, as :func:`optimizer_label`
    reads): ``lr_schedule`` (``exponential``, the authors', where the config is from before the option), and for
    ``wsd`` with another fall than the last :data:`WSD_DECAY_FRACTION` of the run e.g. ``wsd (last 40 %)``."""
    name = config.get("lr_schedule", TrainConfig.lr_schedule)
    fraction = config.get("wsd_decay_fraction", WSD_DECAY_FRACTION)
    return f"{name} (last {100 * fraction:g} %)" if name == "wsd" and fraction != WSD_DECAY_FRACTION else name


def optimizer_label(config: dict) -> str:
    """A run's optimizer as the tables name it, from its config (a dict, as a suite file or ``TrainConfig.to_dict``
    holds it): ``adam`` (also where the config is from before the option), ``muon``, and for Muon with other settings
    than its defaults (:data:`MUON_FIELDS`) e.g. ``muon (all layers, 3 iterations)``, ``muon (momentum 0.9)``,
    ``muon (lr x 2)`` or ``muon (weight decay 0.1)``."""
    name = config.get("optimizer", "adam")
    if name != "muon":
        return name
    layers = config.get("muon_layers", TrainConfig.muon_layers)
    steps = config.get("muon_ns_steps", TrainConfig.muon_ns_steps)
    momentum = config.get("muon_momentum", TrainConfig.muon_momentum)
    scale = config.get("muon_lr_scale", TrainConfig.muon_lr_scale)
    decay = config.get("muon_weight_decay", TrainConfig.muon_weight_decay)
    other = (([f"{layers} layers"] if layers != TrainConfig.muon_layers else [])
             + ([f"{steps} iterations"] if steps != TrainConfig.muon_ns_steps else [])
             + ([f"momentum {momentum:g}"] if momentum != TrainConfig.muon_momentum else [])
             + ([f"lr x {scale:g}"] if scale != TrainConfig.muon_lr_scale else [])
             + ([f"weight decay {decay:g}"] if decay != TrainConfig.muon_weight_decay else []))
    return f"muon ({', '.join(other)})" if other else name


def check_device_name(name: Any) -> str:
    """``name`` if it is a device a run may name (:data:`DEVICE_PATTERN`), else a BssvaeError naming it.

    Checked when the config is built, so that a bad name fails even where nothing trains (a
    finished run) and whether a GPU is present is only asked when the run starts.
    """
    if not isinstance(name, str) or not DEVICE_PATTERN.fullmatch(name):
        raise BssvaeError(f"device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got {name!r}")
    return name


def profile_names() -> list[str]:
    return sorted(PROFILES)


def make_config(profile: str = "cpu", task: str = "mnist", method: str = "vae", n_sources: int = 2,
                **overrides: Any) -> TrainConfig:
    """Build a :class:`TrainConfig` from a named profile plus explicit overrides.

    A profile with :data:`PRECISION_RECIPES` resolves ``precision="auto"`` here, for the device the
    run names, and takes that precision's recipe (and, for the VAE and the AE, :data:`VAE_RECIPES`); an
    explicit override wins over both (so ``precision="fp32"`` gives the fp32 recipe on any CPU).

    Raises:
        BssvaeError: for an unknown profile, task, method, or an invalid value.
    """
    check_choice("profile", profile, PROFILES)
    check_choice("task", task, TASKS)
    if task not in PROFILES[profile]:
        raise BssvaeError(f"profile {profile!r} has no settings for task {task!r}; it has {sorted(PROFILES[profile])}")
    n_sources = check_int("n_sources", n_sources, minimum=1)
    values: dict[str, Any] = dict(PROFILES[profile][task])
    from .baselines import CONFIG_OVERRIDES  # per-method defaults of the baselines (e.g. GLO's epochs)

    method_defaults = CONFIG_OVERRIDES.get((profile, method), {})
    values.update(method_defaults)
    explicit = {k: v for k, v in overrides.items() if v is not None}
    values.update(explicit)
    recipes = PRECISION_RECIPES.get(profile, {}).get(task)
    if recipes:
        precision = values.get("precision", TrainConfig.precision)
        if precision == "auto":  # what train() would resolve it to on the run's device (which this checks)
            from .train import resolve_device, resolve_precision  # late import: train imports config and torch

            device = resolve_device(values.get("device", TrainConfig.device))
            precision = values["precision"] = resolve_precision("auto", device)
        recipe = dict(recipes.get(precision, {}))
        vae_recipe = VAE_RECIPES.get(profile, {}).get(task, {}).get(precision, {})
        # A run that names another optimizer than the VAE recipe's keeps the recipe of all methods.
        if method in METHODS and explicit.get("optimizer", vae_recipe.get("optimizer")) == vae_recipe.get("optimizer"):
            recipe.update(vae_recipe)
        # A method's own defaults (GLO's epochs per stage) stay, as they do in baselines.baseline_config.
        values.update({k: v for k, v in recipe.items() if k not in explicit and k not in method_defaults})
    n_digits = values.get("n_digits", TrainConfig.n_digits)
    if task == "mnist" and isinstance(n_digits, int) and n_digits > MNIST_TEST_IMAGES:
        raise BssvaeError(f"n_digits: each test mixture uses M of the {MNIST_TEST_IMAGES} MNIST test images once, "
                          f"so M (-M, --n-digits) is at most {MNIST_TEST_IMAGES}, got {n_digits}")
    if task == "mnist" and "n_test" not in explicit:  # 5000 pairs; fewer mixtures of 3 or more digits
        if isinstance(n_digits, int) and n_digits >= 1:
            values["n_test"] = min(values.get("n_test", TrainConfig.n_test), MNIST_TEST_IMAGES // n_digits)
    model_over = values.pop("model", None)
    if isinstance(model_over, ModelConfig):
        model = dataclasses.replace(model_over, n_sources=n_sources)
    else:
        base = ModelConfig.mnist if task == "mnist" else ModelConfig.audio
        model = base(n_sources)
        if model_over:
            unknown = sorted(set(model_over) - {f.name for f in dataclasses.fields(ModelConfig)})
            if unknown:
                raise BssvaeError(f"model: unknown keys {unknown}; known: "
                                  f"{sorted(f.name for f in dataclasses.fields(ModelConfig))}")
            model = dataclasses.replace(model, **model_over)
    model = dataclasses.replace(model, variational=(method != "ae"))
    return TrainConfig.from_dict(dict(values, profile=profile, task=task, method=method,
                                      n_sources=n_sources, model=model))
