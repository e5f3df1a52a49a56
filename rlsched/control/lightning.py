"""`LearnedLRCallback`: hands a Lightning run's training-step loss and logits to its `LearnedLR` schedulers.

    def training_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss, "logits": logits.detach()}  # logits: for the prediction features

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=0.01)
        sched = LearnedLR(opt, "docs/results/demo_controller", model=self, probe=..., initial_batch=...,
                          total_steps=self.trainer.max_steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    Trainer(max_steps=..., callbacks=[LearnedLRCallback()])

Lightning steps its schedulers right after the optimizer step and before any `on_train_batch_end` hook sees the
step's outputs, so the callback wraps `training_step` for the length of the fit and passes each output to every
`LearnedLR` among the trainer's schedulers (also inside `SequentialLR` or `ChainedScheduler`) via `observe`.
With `accumulate_grad_batches` > 1 the controller sees the last micro-batch's loss of each optimizer step.
Needs `lightning` or `pytorch_lightning` (the dev extra has it); `rlsched.LearnedLR` itself does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rlsched.control.learned_lr import LearnedLR

try:  # the unified package first: its Trainer accepts only its own Callback class
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on which Lightning is installed
    import pytorch_lightning as pl


def learned_schedulers(scheduler: Any) -> Iterator[LearnedLR]:
    """Every LearnedLR in `scheduler`, looking inside SequentialLR and ChainedScheduler."""
    if isinstance(scheduler, LearnedLR):
        yield scheduler
    for inner in getattr(scheduler, "_schedulers", ()):
        yield from learned_schedulers(inner)


class LearnedLRCallback(pl.Callback):
    """Passes `training_step`'s loss and logits (`{"loss": ..., "logits": ...}`, or the loss alone when the
    controller observes the probe's predictions) to the trainer's LearnedLR schedulers, each step."""

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        schedulers = [s for config in trainer.lr_scheduler_configs for s in learned_schedulers(config.scheduler)]
        if not schedulers:
            raise ValueError(
                "LearnedLRCallback found no LearnedLR among the trainer's schedulers; return one from "
                'configure_optimizers as {"scheduler": LearnedLR(...), "interval": "step"}'
            )
        for config in trainer.lr_scheduler_configs:
            if any(True for _ in learned_schedulers(config.scheduler)) and config.interval != "step":
                raise ValueError(
                    f'LearnedLR acts per optimizer step: set "interval": "step" in its scheduler config '
                    f"(got {config.interval!r})"
                )
        original = pl_module.training_step

        def training_step(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            loss, logits = (out.get("loss"), out.get("logits")) if isinstance(out, Mapping) else (out, None)
            if loss is None:
                raise ValueError('training_step must return the loss, or a dict with "loss" (and "logits")')
            for sched in schedulers:
                sched.observe(loss, logits)
            return out

        pl_module.training_step = training_step  # an instance attribute: the class's method stays as it is

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        pl_module.__dict__.pop("training_step", None)  # also after a failed fit
