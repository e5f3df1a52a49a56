"""The observer: turns one step's training signals into the controller's observation.

It owns the features (rlsched.env.features), their EMAs, the previous predictions, the declared bounds and the Box.
It needs no env: anything that trains a network can feed it the same signals (the env does, after every K
optimizer steps; a torch LR scheduler can, in a user's own training loop), and it returns the same observation.

Per step: `observe(...)` takes tensors still on the trainee's device and synchronises with the host once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from rlsched.env.features import (
    DEFAULT_FEATURES,
    INVARIANT_FEATURES,
    LOG_EPS,
    OBS_TRANSFORMS,
    add_invariant,
    centred_sum_of_squares,
    ema,
    fan_in,
    feature_table,
    log_var,
    symlog,
)
from rlsched.env.options import PREDICTION_SOURCES

if TYPE_CHECKING:
    from rlsched.env.config import EnvConfig


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


class Observer:
    """Features of one trainee, step after step (call `reset()` at the start of every training run).

    `feature_names`: which features, in order (see rlsched.env.features.feature_table); `horizon`: the env steps of
    a run (the `progress` feature is t / horizon); `prediction_source`: "train" (the training batch's logits,
    as the paper) or "validation" (the probe's).
    """

    def __init__(
        self,
        feature_names: Sequence[str],
        *,
        horizon: int,
        lr_min: float,
        lr_max: float,
        max_loss: float = 100.0,
        weight_bound: float = 100.0,
        ema_decay: float = 0.8,
        prediction_source: str = "train",
        obs_transform: str = "none",
        initial_lr: float = 0.01,
    ) -> None:
        if prediction_source not in PREDICTION_SOURCES:
            raise ValueError(f"unknown prediction_source {prediction_source!r}; allowed: {list(PREDICTION_SOURCES)}")
        if obs_transform not in OBS_TRANSFORMS:
            raise ValueError(f"unknown obs_transform {obs_transform!r}; allowed: {list(OBS_TRANSFORMS)}")
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1 (env steps per run), got {horizon}")
        table = feature_table(max_loss, lr_min, lr_max, weight_bound)
        unknown = [f for f in feature_names if f not in table]
        if unknown or not feature_names:
            raise ValueError(f"unknown feature(s) {unknown or '(empty list)'}; allowed: {list(table)}")
        self.feature_names: list[str] = list(feature_names)
        self.horizon = horizon
        self.initial_lr = initial_lr
        self._invariant = bool(set(self.feature_names) & set(INVARIANT_FEATURES) - set(DEFAULT_FEATURES))
        self.ema_decay = ema_decay
        self.prediction_source = prediction_source
        self.symlog = obs_transform == "symlog"
        low = np.array([table[f].low for f in self.feature_names], dtype=np.float64)
        high = np.array([table[f].high for f in self.feature_names], dtype=np.float64)
        if self.symlog:
            low, high = symlog(low), symlog(high)
        self.low, self.high = low, high
        self._low_list, self._high_list = low.tolist(), high.tolist()
        self.space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.reset()

    @classmethod
    def from_config(cls, cfg: EnvConfig) -> Observer:
        return cls(
            cfg.features,
            horizon=cfg.episode_steps,
            lr_min=cfg.lr_min,
            lr_max=cfg.lr_max,
            max_loss=cfg.max_loss,
            weight_bound=cfg.weight_bound,
            ema_decay=cfg.ema_decay,
            prediction_source=cfg.prediction_source,
            obs_transform=cfg.obs_transform,
            initial_lr=cfg.initial_lr,
        )

    def add_invariant(self, raw: dict, num_classes: int, penult_shape: torch.Size, last_shape: torch.Size) -> dict:
        """`raw` with the task-invariant features (rlsched.env.features.add_invariant) for layers of these shapes."""
        if not self._invariant:  # none of them observed: nothing to compute on the step's path
            return raw
        f_penult = fan_in(penult_shape)
        f_last = fan_in(last_shape, fallback=f_penult)
        return add_invariant(
            raw, num_classes=num_classes, fan_in_penult=f_penult, fan_in_last=f_last, initial_lr=self.initial_lr
        )

    def reset(self) -> None:
        """Forget the EMAs and the previous predictions. The predictions "before" the first ones are taken as
        uniform, so the change feature is defined from the first observation on."""
        self._pred_ema: float | None = None
        self._change_ema: float | None = None
        self._prev_probs: torch.Tensor | None = None

    def observe(
        self,
        *,
        train_loss: torch.Tensor,
        train_logits: torch.Tensor,
        val_loss: torch.Tensor,
        val_acc: torch.Tensor,
        val_logits: torch.Tensor,
        observed_params: tuple[torch.Tensor, torch.Tensor],
        lr: float,
        t: int,
    ) -> tuple[np.ndarray, dict[str, float]]:
        """(observation, raw feature values) after env step `t` (0 at the run's start) at learning rate `lr`.

        Tensors, on any device: `train_loss` the mean training loss of the step (0-dim), `train_logits` the
        logits of its last training batch, `val_*` the probe's loss, accuracy (0-dim) and logits,
        `observed_params` the (penultimate, last) layers' weights. `raw` holds every feature (and val_accuracy)
        unclipped, as floats; the observation holds the configured ones, transformed and clipped into the Box.
        """
        logits = train_logits if self.prediction_source == "train" else val_logits
        # Class-major layout: the features are variances over all elements, which the layout leaves unchanged,
        # and torch's CPU softmax over a short last dimension is about 3x slower than over the long first one.
        probs = F.softmax(logits.t(), dim=0)
        prev = self._prev_probs
        if prev is None:
            prev = torch.full_like(probs, 1.0 / probs.shape[0])
        penult, last = observed_params
        with torch.no_grad():
            stats = torch.stack(
                [
                    val_loss,
                    val_acc,
                    train_loss.reshape(()),
                    probs.var(unbiased=False),
                    (probs - prev).var(unbiased=False),
                    *centred_sum_of_squares(penult),
                    last.mean(),
                    last.var(unbiased=False),
                ]
            ).tolist()  # the step's single host sync
        self._prev_probs = probs
        vl, va, tl, pvar, pcvar, pm, pss, lm, lv = stats
        pv = pss / penult.numel()
        self._pred_ema = ema(self._pred_ema, log_var(pvar), self.ema_decay)
        self._change_ema = ema(self._change_ema, log_var(pcvar), self.ema_decay)
        raw = {
            "val_loss": vl,
            "val_accuracy": va,
            "train_loss": tl,
            "pred_log_var_ema": self._pred_ema,
            "pred_change_log_var_ema": self._change_ema,
            "penult_weight_mean": pm,
            "penult_weight_var": pv,
            "last_weight_mean": lm,
            "last_weight_var": lv,
            "log10_lr": math.log10(lr),
            "progress": t / self.horizon,
        }
        self.add_invariant(raw, probs.shape[0], penult.shape, last.shape)
        return self.observation(raw), raw

    def observation(self, raw: dict[str, float]) -> np.ndarray:
        """The configured features of `raw`, transformed and clipped into the Box (NaN becomes 0 first)."""
        values = [raw[f] for f in self.feature_names]
        if self.symlog:
            values = symlog(np.array(values)).tolist()
        # Plain floats, not numpy calls: for 9 values numpy's per-call overhead costs more than the work.
        # NaN becomes 0 and then, like +-inf, is clipped into the declared bounds.
        bounds = zip(values, self._low_list, self._high_list, strict=True)
        obs = [_clip(0.0 if v != v else v, lo, hi) for v, lo, hi in bounds]
        return np.array(obs, dtype=np.float32)


class BatchObserver:
    """The features of N trainees at once, for a population trained in lockstep (rlsched.env.vector).

    The same features, bounds, Box and EMA rule as `Observer` (whose instance it holds for them), computed on
    tensors with a leading dimension N with one host sync per step, and finished in numpy. Row i's observation
    equals what an `Observer` fed trainee i's signals returns, to float tolerance (the summation orders differ).
    """

    def __init__(self, observer: Observer, n: int) -> None:
        self.single, self.n = observer, n
        self.feature_names = observer.feature_names
        self.space = observer.space
        self._pred_ema = np.zeros(n)
        self._change_ema = np.zeros(n)
        self._fresh = np.ones(n, dtype=bool)  # no EMA yet: the next value starts it
        self._prev_probs: torch.Tensor | None = None
        self._uniform_rows = np.ones(n, dtype=bool)  # rows whose "previous predictions" are uniform

    def reset_rows(self, rows: Sequence[int]) -> None:
        """Rows that start a new run forget their EMAs and previous predictions (see `Observer.reset`)."""
        rows = list(rows)
        self._fresh[rows] = True
        self._uniform_rows[rows] = True

    def observe(
        self,
        *,
        train_loss: torch.Tensor,
        train_logits: torch.Tensor,
        val_loss: torch.Tensor,
        val_acc: torch.Tensor,
        val_logits: torch.Tensor,
        observed_params: tuple[torch.Tensor, torch.Tensor],
        lrs: np.ndarray,
        t: np.ndarray,
        rows: Sequence[int] | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(observations (R, F), raw features as arrays (R,)) of `rows` (default: all N), whose signals are the
        tensors given (leading dimension R); `lrs` and `t` are per row. See `Observer.observe`."""
        rows = np.arange(self.n) if rows is None else np.asarray(list(rows))
        logits = train_logits if self.single.prediction_source == "train" else val_logits
        probs = F.softmax(logits, dim=-1)
        prev = self._previous(rows, probs)
        penult, last = observed_params
        with torch.no_grad():
            flat_p = penult.reshape(len(rows), -1)
            p_mean = flat_p.mean(1)
            centred = flat_p - p_mean[:, None]
            flat_l = last.reshape(len(rows), -1)
            stats = (
                torch.stack(
                    [
                        val_loss,
                        val_acc,
                        train_loss.reshape(-1),
                        probs.reshape(len(rows), -1).var(1, unbiased=False),
                        (probs - prev).reshape(len(rows), -1).var(1, unbiased=False),
                        p_mean,
                        torch.einsum("nm,nm->n", centred, centred),
                        flat_l.mean(1),
                        flat_l.var(1, unbiased=False),
                    ],
                    dim=1,
                )
                .double()
                .cpu()
                .numpy()
            )  # the step's single host sync
        self._store(rows, probs)
        vl, va, tl, pvar, pcvar, pm, pss, lm, lv = stats.T
        decay = self.single.ema_decay
        fresh = self._fresh[rows]
        pred = np.log(pvar + LOG_EPS)
        change = np.log(pcvar + LOG_EPS)
        self._pred_ema[rows] = np.where(fresh, pred, decay * self._pred_ema[rows] + (1.0 - decay) * pred)
        self._change_ema[rows] = np.where(fresh, change, decay * self._change_ema[rows] + (1.0 - decay) * change)
        self._fresh[rows] = False
        raw = {
            "val_loss": vl,
            "val_accuracy": va,
            "train_loss": tl,
            "pred_log_var_ema": self._pred_ema[rows].copy(),
            "pred_change_log_var_ema": self._change_ema[rows].copy(),
            "penult_weight_mean": pm,
            "penult_weight_var": pss / flat_p.shape[1],
            "last_weight_mean": lm,
            "last_weight_var": lv,
            "log10_lr": np.log10(np.asarray(lrs, dtype=np.float64)),
            "progress": np.asarray(t, dtype=np.float64) / self.single.horizon,
        }
        # Per trainee, without the leading population dimension.
        self.single.add_invariant(raw, probs.shape[-1], penult.shape[1:], last.shape[1:])
        return self.observation(raw), raw

    def observation(self, raw: dict[str, np.ndarray]) -> np.ndarray:
        """(R, F): the configured features, transformed, NaN as 0, clipped into the Box (as `Observer`)."""
        values = np.stack([raw[f] for f in self.feature_names], axis=1)
        if self.single.symlog:
            values = symlog(values)
        values = np.nan_to_num(values, nan=0.0, posinf=np.inf, neginf=-np.inf)
        return np.clip(values, self.single.low, self.single.high).astype(np.float32)

    def _previous(self, rows: np.ndarray, probs: torch.Tensor) -> torch.Tensor:
        if self._prev_probs is None or self._prev_probs.shape[1:] != probs.shape[1:]:
            self._prev_probs = torch.full((self.n, *probs.shape[1:]), 1.0 / probs.shape[-1], device=probs.device)
            self._uniform_rows[:] = True
        uniform = self._uniform_rows[rows]
        if uniform.any():
            self._prev_probs[torch.as_tensor(rows[uniform])] = 1.0 / probs.shape[-1]
        return self._prev_probs if len(rows) == self.n and (rows == np.arange(self.n)).all() else self._prev_probs[rows]

    def _store(self, rows: np.ndarray, probs: torch.Tensor) -> None:
        if len(rows) == self.n and (rows == np.arange(self.n)).all():  # all rows in order: replace, no scatter
            self._prev_probs = probs
        else:
            self._prev_probs[torch.as_tensor(rows)] = probs
        self._uniform_rows[rows] = False
