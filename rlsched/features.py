"""Observation features: names, declared bounds and the small computations behind them.

The paper's 9 features come first, in the authors' order. Bounds are declared per feature and every
observation is clipped into them, so the Box the env declares is the Box it returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

LOG_EPS = 1e-10  # the authors' LOG_BASE: keeps log(variance) finite when predictions stop changing
LOG_FLOOR = math.log(LOG_EPS)


@dataclass(frozen=True)
class Feature:
    name: str
    low: float
    high: float
    doc: str


def feature_table(max_loss: float, lr_min: float, lr_max: float, weight_bound: float) -> dict[str, Feature]:
    wb = weight_bound
    return {
        f.name: f
        for f in [
            Feature("val_loss", 0.0, max_loss, "cross-entropy on the fixed validation probe"),
            Feature("pred_log_var_ema", LOG_FLOOR, 0.0, "EMA of log variance of softmax predictions"),
            Feature("pred_change_log_var_ema", LOG_FLOOR, 0.0, "EMA of log variance of the change in predictions"),
            Feature("train_loss", 0.0, max_loss, "mean training loss over the step's K optimizer steps"),
            Feature("penult_weight_mean", -wb, wb, "mean of the penultimate layer's weights"),
            Feature("penult_weight_var", 0.0, wb * wb, "variance of the penultimate layer's weights"),
            Feature("last_weight_mean", -wb, wb, "mean of the last layer's weights"),
            Feature("last_weight_var", 0.0, wb * wb, "variance of the last layer's weights"),
            Feature("log10_lr", math.log10(lr_min), math.log10(lr_max), "log10 of the learning rate in use"),
            # Optional extras, off by default.
            Feature("val_accuracy", 0.0, 1.0, "accuracy on the validation probe"),
            Feature("progress", 0.0, 1.0, "fraction of the episode's steps taken"),
        ]
    }


PAPER_FEATURES = (
    "val_loss",
    "pred_log_var_ema",
    "pred_change_log_var_ema",
    "train_loss",
    "penult_weight_mean",
    "penult_weight_var",
    "last_weight_mean",
    "last_weight_var",
    "log10_lr",
)

# The default adds a clock: without it a policy cannot learn "decay towards the end" from features that only
# drift with time (the authors' state has none; DACBench's SGD state has the step count).
DEFAULT_FEATURES = (*PAPER_FEATURES, "progress")
# Named presets for `env.features`; "paper" is the authors' exact 9 for fidelity runs.
FEATURE_PRESETS = {"default": DEFAULT_FEATURES, "paper": PAPER_FEATURES}

OBS_TRANSFORMS = ("none", "symlog")


def log_var(variance: float) -> float:
    """log(variance + eps) of a population variance over all elements (as tf.nn.moments computes it)."""
    return math.log(variance + LOG_EPS)


def centred_sum_of_squares(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, sum of squared deviations from it) over all elements: the population variance is the second
    divided by `x.numel()`.

    Two-pass, with the squares summed by one BLAS dot product: on the env's per-step path, for the 100k
    weights of a penultimate layer, about twice as fast on CPU as `x.var()` (or `torch.var_mean`), with a
    relative error ~1e-7 against float64. The caller divides after its host sync, saving a device op.
    """
    flat = x.detach().reshape(-1)
    mean = flat.mean()
    centred = flat - mean
    return mean, torch.dot(centred, centred)


def ema(prev: float | None, value: float, decay: float) -> float:
    """Exponential moving average started at its first value, as in the authors' code."""
    return value if prev is None else decay * prev + (1.0 - decay) * value


def symlog(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))
