"""FLOP counting for the VAE-BSS training step and the measured matrix-product peak of a device.

The training step's work is counted analytically from the layer sizes, the usual convention for
dense networks (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Sec. 2.1): a
Linear layer with ``d_in`` inputs and ``d_out`` outputs costs ``d_in * d_out`` multiply-adds (MACs)
per sample in the forward pass, and a training step (forward + backward) costs 6 FLOPs per MAC
(2 forward, 4 backward: the gradients with respect to the input and to the weights). The shared
decoder is applied to each of the K latent sources, so its MACs count K times. BatchNorm, ReLU,
the sigmoid, the loss and Adam are elementwise and left out (they are O(width), not
O(width^2)). So is the gradient with respect to the first layer's input, the mixtures, which
autograd never computes: 2 FLOPs per MAC of that layer are subtracted. :func:`torch.utils.flop_counter`
counts the same matrix products from the executed graph; the tests check the two agree exactly.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from bssvae.config import ModelConfig
from bssvae.errors import BssvaeError

#: FLOPs per MAC of a training step (forward 2 + backward 4).
TRAIN_FLOPS_PER_MAC = 6
#: torch dtypes by the names used in configs and in bench.json.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: Training precision name (TrainConfig.precision) -> the dtype its matrix products run in.
PRECISION_DTYPE = {"fp32": "float32", "bf16": "bfloat16"}


def linear_macs(sizes: list[int] | tuple[int, ...]) -> int:
    """Multiply-adds per sample of a chain of Linear layers ``sizes[0] -> sizes[1] -> ...``."""
    return sum(int(a) * int(b) for a, b in zip(sizes[:-1], sizes[1:]))


@dataclass(frozen=True)
class StepFlops:
    """Multiply-adds per mixture of the VAE-BSS network, by part.

    ``encoder`` includes the head (to 2 x K x Dz); ``decoder`` is one pass of the shared decoder
    (applied K times per mixture).
    """

    encoder_macs: int
    decoder_macs: int
    n_sources: int
    first_layer_macs: int = 0  # input_dim x first hidden width: its input gradient is never computed

    @property
    def forward_macs(self) -> int:
        """MACs of one forward pass for one mixture."""
        return self.encoder_macs + self.n_sources * self.decoder_macs

    @property
    def train_flops(self) -> int:
        """FLOPs of one training step (forward + backward) for one mixture: 6 x MACs, less the
        input gradient of the first layer (2 x its MACs), which is never computed."""
        return TRAIN_FLOPS_PER_MAC * self.forward_macs - 2 * self.first_layer_macs

    @property
    def inference_flops(self) -> int:
        """FLOPs of one forward pass for one mixture: 2 x MACs."""
        return 2 * self.forward_macs


def step_flops(config: ModelConfig) -> StepFlops:
    """Count the MACs of the VAE-BSS network of ``config`` (paper, Table I) from its layer sizes.

    Args:
        config: the model's sizes.

    Returns:
        :class:`StepFlops`; ``.train_flops`` is the per-mixture cost of a training step.
    """
    if not isinstance(config, ModelConfig):
        raise BssvaeError(f"config: expected a ModelConfig, got {type(config).__name__}")
    enc = linear_macs([config.input_dim, *config.hidden_dims, 2 * config.n_sources * config.latent_dim])
    dec = linear_macs([config.latent_dim, *reversed(config.hidden_dims), config.input_dim])
    return StepFlops(enc, dec, config.n_sources, config.input_dim * config.hidden_dims[0])


def module_linear_macs(model: nn.Module, decoder_repeats: int = 1) -> int:
    """MACs per sample of every ``nn.Linear`` in a module, walking it (decoder counted repeatedly).

    A second, independent count for :class:`bssvae.model.VAEBSS` (``encoder``, ``head``,
    ``decoder``): it reads the layers the model actually holds rather than its config.
    """
    total = 0
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            reps = decoder_repeats if name.startswith("decoder") else 1
            total += reps * mod.in_features * mod.out_features
    return total


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class MatmulPeak:
    """Measured throughput of a square matrix product ``(n, n) @ (n, n)`` in one dtype."""

    dtype: str
    n: int
    flops_per_s: list[float]
    op: str = "matmul"

    @property
    def median(self) -> float:
        return statistics.median(self.flops_per_s)

    @property
    def peak(self) -> float:
        """The best repeat: other processes can only slow a product down, never speed it up."""
        return max(self.flops_per_s)

    def to_dict(self) -> dict:
        return {"dtype": self.dtype, "n": self.n, "op": self.op, "median_flops_per_s": self.median,
                "max_flops_per_s": self.peak, "samples_flops_per_s": self.flops_per_s}


class MatmulProbe:
    """Measures the matrix-product peak of a device in one dtype, one repeat at a time.

    Two routes to the same product are tried, ``torch.matmul`` and ``torch.nn.functional.linear``
    (``Linear`` layers take the second; on a CPU without native bf16 instructions the two differ by
    several times in bfloat16), and the faster is kept. The size grows from 256 until one product
    takes ``target_s`` or ``max_n`` is reached (large enough to amortise call overhead, small
    enough that a slow dtype finishes in seconds). Each :meth:`sample` times a few products; call
    it between other measurements so that they all see the same machine load.
    """

    OPS = {"matmul": lambda a, b: torch.matmul(a, b), "linear": lambda a, b: torch.nn.functional.linear(a, b)}

    def __init__(self, device: torch.device, dtype: str, target_s: float = 0.05, max_n: int | None = None):
        if dtype not in DTYPES:
            raise BssvaeError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}")
        self.device, self.dtype = torch.device(device), dtype
        self.flops: list[float] = []
        max_n = max_n or (8192 if self.device.type == "cuda" else 2048)
        dt = DTYPES[dtype]
        a = torch.randn(256, 256, device=self.device).to(dt)
        self.op = min(self.OPS, key=lambda name: self._time(self.OPS[name], a, a, 2))
        n = 256
        while True:
            a = torch.randn(n, n, device=self.device).to(dt)
            b = torch.randn(n, n, device=self.device).to(dt)
            seconds = self._time(self.OPS[self.op], a, b, 1)
            if seconds >= target_s or n >= max_n:
                break
            n *= 2
        self.n, self.a, self.b = n, a, b

    def _time(self, op, a: torch.Tensor, b: torch.Tensor, reps: int) -> float:
        op(a, b)  # warm-up (kernel selection, caches)
        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(reps):
            op(a, b)
        _sync(self.device)
        return (time.perf_counter() - t0) / reps

    def sample(self, reps: int = 3) -> float:
        """Time ``reps`` products; record and return the FLOP/s (2 n^3 per product)."""
        seconds = self._time(self.OPS[self.op], self.a, self.b, reps)
        f = 2 * self.n ** 3 / seconds
        self.flops.append(f)
        return f

    def result(self) -> MatmulPeak:
        if not self.flops:
            raise BssvaeError("MatmulProbe.result: call sample() at least once first")
        return MatmulPeak(self.dtype, self.n, list(self.flops), self.op)


def flops_fraction(achieved: float, peak: float) -> float:
    """achieved / peak, or NaN when the peak is unknown."""
    return achieved / peak if peak and peak > 0 and not math.isnan(peak) else float("nan")


def mixed_peak_fraction(flops_per_s: dict[str, float], peaks: dict[str, float]) -> float:
    """The fraction of the matmul peak reached by a step whose products run in several precisions: the seconds they
    would take at their precisions' measured peaks, per second of the step. ``flops_per_s`` maps a dtype's name to
    the step's products in it per second (e.g. a float32 step with Muon, whose Newton-Schulz products PyTorch runs in
    bfloat16: ``{"float32": ..., "bfloat16": ...}``), ``peaks`` each dtype's peak. With one precision it is
    :func:`flops_fraction`; NaN where a peak it needs is unknown."""
    fractions = [flops_fraction(f, peaks.get(dt, float("nan"))) for dt, f in flops_per_s.items() if f]
    return sum(fractions) if fractions else float("nan")
