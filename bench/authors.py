"""A training loop in the style of the authors' code (jundsp/VAE-BSS), on our VAE-BSS model.

What it reproduces of their ``train.py`` / ``src/dataloader.py`` / ``utils.py`` (read through the
public repository; written here from that description, not copied):

- data: a per-item ``Dataset`` of MNIST training images in the manner of torchvision's ``MNIST``
  with ``transforms.ToTensor()``: ``__getitem__`` makes a PIL image of one digit and converts it
  to a (1, 28, 28) float tensor in [0, 1], returning ``(image, label)``;
- ``DataLoader(batch_size=64, shuffle=True)``, no worker processes on a CPU (their script passes
  ``num_workers=4, pin_memory=True`` only when CUDA is used, and so do we);
- mixing inside the loop: the batch is split in half and paired, ``x = (a + b) / 2``, so a batch
  of 64 images gives 32 mixtures, and an epoch 30,000;
- loss summed over the batch (``reduction='sum'``): Laplace term ``sum |x - x_hat| / b`` plus
  ``beta`` times the Gaussian KL; three ``.item()`` calls per step for the running losses;
- Adam, learning rate 2e-4, ``StepLR(step_size=1, gamma=0.9998)`` stepped after each epoch while
  the learning rate is at least 1e-5; ``beta = min(1, epoch / min(epochs, 50)) * 0.5`` with
  epochs counted from 1;
- float32 throughout, no compilation.

Left out: their console logging every 10 batches, the per-epoch test pass and image saving
(I/O, not training), and torchvision itself (not a dependency of this project; the Dataset below
does the same per-item work with Pillow).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bssvae.config import ModelConfig
from bssvae.errors import BssvaeError
from bssvae.losses import gaussian_kl, laplace_nll
from bssvae.model import VAEBSS

#: The authors' recipe (their argparser defaults; beta warm-up over 50 epochs).
AUTHORS_RECIPE = {"batch_size_images": 64, "lr": 2e-4, "lr_decay": 0.9998, "lr_floor": 1e-5, "beta_max": 0.5,
                  "warm_up_epochs": 50, "precision": "fp32"}


class PerItemMnist(Dataset):
    """MNIST training digits served one at a time, as torchvision's ``MNIST(transform=ToTensor())``.

    Args:
        images: uint8 (N, 28, 28) digits (kept on the CPU, as a torchvision dataset keeps them).
        labels: (N,) labels, or None (then 0 is returned as the label).

    Shape: ``dataset[i]`` -> (image (1, 28, 28) float32 in [0, 1], label int).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.ndim != 3:
            raise BssvaeError(f"images: expected a uint8 tensor (N, H, W), got {getattr(images, 'dtype', type(images))}"
                              f" with shape {tuple(getattr(images, 'shape', ()))}")
        self.images = images.cpu()
        self.labels = labels.cpu() if labels is not None else None

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        pil = Image.fromarray(self.images[index].numpy())  # a grey-level ('L') image
        tensor = torch.from_numpy(np.array(pil, dtype=np.uint8, copy=True)).unsqueeze(0).float().div(255)
        label = int(self.labels[index]) if self.labels is not None else 0
        return tensor, label


def split_pairs(images: torch.Tensor) -> torch.Tensor:
    """The authors' mixing: the first half of a batch plus the second half, halved.

    Shape: images (B, 1, 28, 28) -> x (B // 2, 784), x = (a + b) / 2.
    """
    n = images.shape[0] // 2
    flat = images.reshape(images.shape[0], -1)
    return (flat[:n] + flat[n:2 * n]) / 2.0


class AuthorsTrainer:
    """Their training loop, one step per ``next()``, on our :class:`~bssvae.model.VAEBSS`.

    Args:
        images: uint8 (N, 28, 28) training digits.
        model_config: the network (Table I's MNIST row by default); K from it.
        device: where the model lives (the loader produces CPU tensors that are moved per batch).
        seed: seeds the model and the loader's shuffling.
        epochs: the training length the beta warm-up divides by (their ``min(epochs, warm_up)``);
            the default is long enough that the warm-up lasts 50 epochs, as in a long run.
    """

    def __init__(self, images: torch.Tensor, model_config: ModelConfig | None = None, device="cpu", seed: int = 0,
                 epochs: int = 10_000, recipe: dict | None = None):
        self.recipe = dict(AUTHORS_RECIPE, **(recipe or {}))
        self.device = torch.device(device)
        self.model_config = model_config or ModelConfig.mnist(2)
        self.epochs = epochs
        torch.manual_seed(seed)
        self.model = VAEBSS(self.model_config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.recipe["lr"])
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=1, gamma=self.recipe["lr_decay"])
        kwargs = {"num_workers": 4, "pin_memory": True} if self.device.type == "cuda" else {}
        self.loader = DataLoader(PerItemMnist(images), batch_size=self.recipe["batch_size_images"], shuffle=True,
                                 generator=torch.Generator().manual_seed(seed), **kwargs)
        self.dataset_size = len(self.loader.dataset)
        self.epoch = 0
        self.losses: list[float] = []  # mean loss per mixture of each finished epoch
        self.step_losses: list[float] = []  # loss per mixture of each step

    @property
    def mixtures_per_epoch(self) -> int:
        return self.dataset_size // 2

    def beta(self) -> float:
        """``min(1, epoch / min(epochs, warm_up)) * beta_max`` with the epoch counted from 1."""
        return min(1.0, (self.epoch + 1) / min(self.epochs, self.recipe["warm_up_epochs"])) * self.recipe["beta_max"]

    def steps(self) -> Iterator[int]:
        """Train forever (epoch after epoch); each ``next()`` runs one step and returns its mixtures."""
        variational = self.model_config.variational
        while self.epoch < self.epochs:
            self.model.train()
            beta = self.beta()
            running = torch.zeros(3)
            for images, _ in self.loader:
                x = split_pairs(images.to(self.device))
                self.optimizer.zero_grad()
                out = self.model(x)
                ell = laplace_nll(x, out.x_hat).sum()
                kld = gaussian_kl(out.mu, out.logvar).sum() if variational else torch.zeros((), device=x.device)
                loss = ell + beta * kld
                loss.backward()
                self.optimizer.step()
                step_loss = loss.item()
                running[0] += step_loss
                self.step_losses.append(step_loss / x.shape[0])
                running[1] += ell.item()
                running[2] += kld.item()
                yield x.shape[0]
            self.losses.append(float(running[0]) / self.mixtures_per_epoch)
            self.epoch += 1
            if self.optimizer.param_groups[0]["lr"] >= self.recipe["lr_floor"]:
                self.scheduler.step()
