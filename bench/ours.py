"""Our training step, exactly as :func:`bssvae.train.train` runs it, one step per ``next()``.

The suite needs to stop a run at wall-clock marks to evaluate it, which ``train()`` cannot do,
so this loop repeats its structure: the same seeding order, data from
:meth:`bssvae.data.MnistTask.epoch_batches` on the device, the very same step
(:func:`bssvae.train.train_step`: learning rate, beta, bf16 autocast when the config asks for it,
negative ELBO, Adam), and the on-device running sums with one synchronisation per epoch.
``tests/test_bench.py`` checks that one epoch here gives bit-identical
weights to one epoch of ``train()``, so the two cannot drift apart unnoticed.
"""
from __future__ import annotations

import math
import time
from typing import Iterator

import torch

from bssvae.config import TrainConfig
from bssvae.errors import BssvaeError
from bssvae.model import VAEBSS
from bssvae.train import TrainingError, budget_spent, check_model_fits, make_optimizer, train_step


class OursTrainer:
    """The training loop of :func:`bssvae.train.train` as a step iterator (no run directory).

    Args:
        config: the run (profile settings plus overrides); ``config.epochs`` ends the iterator, or
            ``config.budget_minutes`` of time spent inside ``next()`` if that comes first (the
            decaying schedule, cosine, linear or wsd, then follows that clock, as in ``train()``).
        task: a prepared task (for example :class:`bssvae.data.MnistTask`) on ``device``.
        device: where the model and the data live.
        adam_kwargs: if given, Adam (with Muon, the Adam of the other parameters) is built with these
            arguments (e.g. ``{"fused": False}``) instead of as ``train()`` builds it; for variants of
            the step only.
    """

    def __init__(self, config: TrainConfig, task, device: torch.device, adam_kwargs: dict | None = None):
        if not isinstance(config, TrainConfig):
            raise BssvaeError(f"config: expected a TrainConfig, got {type(config).__name__}")
        check_model_fits(config, task)
        self.config, self.task, self.device = config, task, torch.device(device)
        torch.manual_seed(config.seed)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.model = VAEBSS(config.model).to(self.device)
        self.opt = make_optimizer(self.model, config, adam_kwargs)
        self.steps_per_epoch = max(1, task.mixtures_per_epoch // config.batch_size)
        self.forward = torch.compile(self.model) if config.compile else self.model
        self.epoch = 0
        self.train_seconds = 0.0  # time spent inside next(): what a budget counts
        self.history: list[dict] = []

    @property
    def mixtures_per_epoch(self) -> int:
        return self.task.mixtures_per_epoch

    def steps(self) -> Iterator[int]:
        """Run the configured epochs; each ``next()`` runs one step and returns its mixtures."""
        config, model, opt, device = self.config, self.model, self.opt, self.device
        amp = config.precision == "bf16"
        t = time.perf_counter()
        while self.epoch < config.epochs:
            epoch = self.epoch
            model.train()
            sums = torch.zeros(3, device=device)
            n_batches = 0
            spent = False
            for i, x in enumerate(self.task.epoch_batches(self.gen, config.batch_size)):
                elapsed = self.train_seconds + time.perf_counter() - t
                if budget_spent(config, elapsed):
                    spent = True
                    break
                terms, _, _ = train_step(self.forward, opt, x, config, epoch * self.steps_per_epoch + i,
                                         self.steps_per_epoch, amp, elapsed_s=elapsed)
                sums += terms
                n_batches += 1
                self.train_seconds += time.perf_counter() - t
                yield x.shape[0]
                t = time.perf_counter()  # the time between two next() calls is not training time
            if n_batches:
                means = (sums / n_batches).tolist()
                if not all(math.isfinite(v) for v in means):
                    raise TrainingError(f"loss became {means[0]} in epoch {epoch + 1}")
                done = epoch + 1 if not spent else round(epoch + n_batches / self.steps_per_epoch, 4)
                self.history.append({"epoch": done, "loss": means[0], "recon": means[1], "kl": means[2]})
            if spent:
                return
            self.epoch += 1
