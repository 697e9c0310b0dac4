"""Optimizers of a training run (:attr:`bssvae.config.TrainConfig.optimizer`).

- ``adam``: Adam on every parameter, the authors' optimizer and every profile's, but for the ``cpu``
  profile's VAE and AE where they train in bf16 (:data:`bssvae.config.VAE_RECIPES`).
- ``muon``: Muon (momentum orthogonalized by Newton-Schulz iterations; Jordan et al. 2024, as
  ``torch.optim.Muon``) on the weight matrices between hidden layers, Adam on the rest: the layers that
  read or write data or latent parameters (the encoder's first layer, the head, the decoder's last
  layer), the biases and BatchNorm's parameters, as Muon is meant for hidden matrices. Muon's updates
  are scaled to Adam's size (``adjust_lr_fn="match_rms_adamw"``), so one learning rate and schedule
  drive both. Its Newton-Schulz iterations multiply matrices in bfloat16 at every step, which pays on
  devices that compute bfloat16 natively (a GPU, a CPU with AMX or AVX512-BF16) and costs much more on
  others. Measured against Adam in ``results/ablations/muon/``. Five settings of the run
  (:class:`bssvae.config.TrainConfig`) change it: ``muon_layers="all"`` gives Muon every Linear layer's
  weight matrix, the outer ones too, ``muon_ns_steps`` the number of Newton-Schulz iterations
  (both measured in ``results/ablations/muon-layers/``) and ``muon_momentum`` the decay of its momentum
  (``results/ablations/muon-momentum/``); ``muon_lr_scale`` sets Muon's learning rate to that multiple of Adam's
  (each of Muon's parameter groups carries it as ``lr_scale``, which :func:`bssvae.train.train_step` reads), and
  ``muon_weight_decay`` its decoupled weight decay (PyTorch's ``weight_decay`` of Muon; none by default, as measured in
  ``results/ablations/muon-weight-decay-zen5/``).
"""

from __future__ import annotations

from typing import Any

import torch

from .config import MUON_LAYERS, OPTIMIZERS
from .errors import BssvaeError, check_choice

#: Muon's settings besides the learning rate, the iterations, the momentum and the weight decay (torch.optim.Muon's
#: defaults but the scaling of its updates).
MUON_SETTINGS = dict(nesterov=True, adjust_lr_fn="match_rms_adamw")


def adam(params, lr: float, adam_kwargs: dict[str, Any] | None = None) -> torch.optim.Adam:
    """Adam, fused into one kernel where PyTorch has one (+9-12% on CPU); with ``adam_kwargs``, built with
    those arguments instead (e.g. ``{"fused": False}``, for the benchmark's variants of the step)."""
    params = list(params)
    if adam_kwargs is not None:
        return torch.optim.Adam(params, lr=lr, **adam_kwargs)
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):  # older PyTorch, or no fused kernel for this device
        return torch.optim.Adam(params, lr=lr)


def hidden_matrices(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weight matrices of ``model``'s Linear layers but those that read or write data or latent
    parameters: the first Linear of ``model.encoder``, ``model.head`` and the last Linear of
    ``model.decoder`` (:class:`bssvae.model.VAEBSS`)."""
    for name in ("encoder", "head", "decoder"):
        if not isinstance(getattr(model, name, None), torch.nn.Module):
            raise BssvaeError(f"optimizer 'muon': needs a model with encoder, head and decoder modules "
                              f"(a bssvae VAEBSS), got {type(model).__name__} without {name!r}")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    enc = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    dec = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    outer = {id(enc[0]), id(model.head), id(dec[-1])} if enc and dec else set()
    return [m.weight for m in linears if id(m) not in outer]


def muon_matrices(model: torch.nn.Module, layers: str = "hidden") -> list[torch.nn.Parameter]:
    """The weight matrices Muon updates: :func:`hidden_matrices` (``layers="hidden"``) or every Linear
    layer's weight (``"all"``), in the order of ``model.modules()``."""
    check_choice("muon_layers", layers, MUON_LAYERS)
    hidden = hidden_matrices(model)  # also checks that the model has the parts Muon needs
    if layers == "hidden":
        return hidden
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]


#: The precision ``torch.optim.Muon`` runs its Newton-Schulz iterations in, whatever the model's (it casts the
#: update to bfloat16): the benchmark suite times their products against this precision's peak.
NEWTON_SCHULZ_DTYPE = "bfloat16"


def newton_schulz_flops(model: torch.nn.Module, ns_steps: int = 5, layers: str = "hidden") -> int:
    """Floating-point operations of Muon's Newton-Schulz iterations at one step over ``model``'s
    :func:`muon_matrices`: per iteration on an m x n matrix (m <= n), the Gram matrix (2 m^2 n), its
    quintic update (2 m^3) and the product with the matrix (2 m^2 n), as ``torch.optim.Muon`` computes them
    (``ns_steps`` = 5, its default)."""
    total = 0
    for p in muon_matrices(model, layers):
        m, n = sorted(p.shape)
        total += ns_steps * (4 * m * m * n + 2 * m ** 3)
    return total


class MuonAdam:
    """Muon on :func:`muon_matrices` (``layers``; ``ns_steps`` Newton-Schulz iterations per step), Adam on
    every other parameter, stepped together (Adam built by :func:`adam`, with ``adam_kwargs`` if given). Muon's
    learning rate is ``lr_scale`` times Adam's ``lr``: its groups hold ``lr_scale``, which :func:`group_lr` reads.
    ``weight_decay`` is Muon's decoupled weight decay (its matrices times ``1 - lr * weight_decay`` each step, with
    Muon's ``lr``); Adam's parameters have none.

    It has what training and checkpoints use of an optimizer: ``param_groups`` (both optimizers'
    groups; setting a group's ``lr`` sets that optimizer's), ``zero_grad``, ``step``, ``state_dict``
    and ``load_state_dict``, and ``defaults`` (Adam's, so that ``defaults["fused"]`` says whether
    its kernel is fused).
    """

    def __init__(self, model: torch.nn.Module, lr: float, layers: str = "hidden", ns_steps: int = 5,
                 momentum: float = 0.95, adam_kwargs: dict[str, Any] | None = None, lr_scale: float = 1.0,
                 weight_decay: float = 0.0):
        matrices = muon_matrices(model, layers)
        if not matrices:
            raise BssvaeError("optimizer 'muon': the model has no hidden weight matrices for Muon")
        ids = {id(p) for p in matrices}
        self.muon = torch.optim.Muon([{"params": matrices, "lr_scale": lr_scale}], lr=lr * lr_scale,
                                     ns_steps=ns_steps, momentum=momentum, weight_decay=weight_decay,
                                     **MUON_SETTINGS)
        self.adam = adam((p for p in model.parameters() if id(p) not in ids), lr, adam_kwargs)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.muon.param_groups + self.adam.param_groups

    @property
    def defaults(self) -> dict[str, Any]:
        return self.adam.defaults

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adam.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.muon.step()
        self.adam.step()

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict(), "adam": self.adam.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or set(state) != {"muon", "adam"}:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise BssvaeError(f"optimizer state: expected the 'muon' and 'adam' states of a Muon run, got {got}")
        self.muon.load_state_dict(state["muon"])
        self.adam.load_state_dict(state["adam"])


def group_lr(group: dict[str, Any], lr: float) -> float:
    """The learning rate of an optimizer's parameter group when the run's is ``lr``: ``lr`` times the group's
    ``lr_scale`` (Muon's in :class:`MuonAdam`), or ``lr`` for a group without one."""
    return lr * group.get("lr_scale", 1.0)


def make_optimizer(model: torch.nn.Module, name: str, lr: float, muon_layers: str = "hidden",
                   muon_ns_steps: int = 5, muon_momentum: float = 0.95, adam_kwargs: dict[str, Any] | None = None,
                   muon_lr_scale: float = 1.0, muon_weight_decay: float = 0.0):
    """The optimizer ``name`` (one of :data:`OPTIMIZERS`) over ``model``'s parameters; ``muon_layers``,
    ``muon_ns_steps``, ``muon_momentum``, ``muon_lr_scale`` and ``muon_weight_decay`` are Muon's (:class:`MuonAdam`);
    ``adam_kwargs``, if given, build Adam (:func:`adam`)."""
    if name == "adam":
        return adam(model.parameters(), lr, adam_kwargs)
    if name == "muon":
        return MuonAdam(model, lr, muon_layers, muon_ns_steps, muon_momentum, adam_kwargs, muon_lr_scale,
                        muon_weight_decay)
    raise BssvaeError(f"optimizer: expected one of {list(OPTIMIZERS)}, got {name!r}")
