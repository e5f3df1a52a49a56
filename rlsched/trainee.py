"""The network being trained: model, optimizer and data order, advanced K optimizer steps at a time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rlsched.data import DataSplits
from rlsched.models import TraineeNet, build_model, build_optimizer


@dataclass
class StepResult:
    """Tensors (not floats) so the caller decides when to synchronise with the device."""

    train_loss: torch.Tensor  # mean loss over the K optimizer steps
    last_logits: torch.Tensor  # logits of the last training batch, before its update


class Trainee:
    def __init__(
        self,
        splits: DataSplits,
        *,
        model: str,
        model_kwargs: dict,
        optimizer: str,
        lr: float,
        batch_size: int,
        momentum: float,
        weight_decay: float,
        init_seed: int,
        order_seed: int,
        device: torch.device,
        eval_batch_size: int,
    ):
        if batch_size > splits.train_size:
            raise ValueError(f"batch_size={batch_size} exceeds the training split ({splits.train_size})")
        self.splits = splits
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.device = device
        spec = splits.spec
        # Build under a forked RNG: initialization depends on init_seed alone, and the caller's global
        # RNG stream is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.net: TraineeNet = build_model(model, spec.channels, spec.image_size, spec.num_classes, **model_kwargs)
        self.net.to(device)
        # The same Parameter objects for the whole run (optimizers update them in place), looked up once.
        self.observed_params = self.net.feature_params()
        self.opt = build_optimizer(optimizer, self.net.parameters(), lr, momentum, weight_decay)
        self.batches_per_epoch = splits.train_size // batch_size
        self._order = torch.Generator().manual_seed(int(order_seed))
        self._perm = torch.empty(0, dtype=torch.long)
        self._cursor = 0
        self.optimizer_steps = 0

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def _next_rows(self) -> torch.Tensor:
        # Epoch-wise reshuffle, dropping the ragged last batch so every batch has the same size (the
        # prediction-change feature compares two batches element by element).
        if self._cursor + self.batch_size > len(self._perm):
            self._perm = torch.randperm(self.splits.train_size, generator=self._order).to(self.device)
            self._cursor = 0
        rows = self._perm[self._cursor : self._cursor + self.batch_size]
        self._cursor += self.batch_size
        return rows

    def train(self, k: int) -> StepResult:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.net.train()
        losses = []
        for _ in range(k):
            x, y = self.splits.train_batch(self._next_rows())
            logits = self.net(x)
            loss = F.cross_entropy(logits, y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            losses.append(loss.detach())
            self.optimizer_steps += 1
        train_loss = losses[0] if k == 1 else torch.stack(losses).mean()
        return StepResult(train_loss=train_loss, last_logits=logits.detach())

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean loss, accuracy, logits) in eval mode, in chunks of eval_batch_size."""
        self.net.eval()
        chunks = [self.net(x[i : i + self.eval_batch_size]) for i in range(0, len(x), self.eval_batch_size)]
        logits = chunks[0] if len(chunks) == 1 else torch.cat(chunks)
        loss = F.cross_entropy(logits, y)
        # max().indices, not argmax(): the same predictions, about 3x faster on CPU for few classes.
        acc = (logits.max(1).indices == y).float().mean()
        return loss, acc, logits
