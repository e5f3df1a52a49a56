"""Hand-designed learning-rate schedules, each driven by PyTorch's own scheduler on a dummy optimizer.

Using torch's schedulers rather than re-deriving their formulas means the baselines behave exactly as
the schedules practitioners tune in real training code (ReduceLROnPlateau's thresholds, cooldown and eps
in particular).

Timing: reset() builds a fresh dummy optimizer and scheduler, so every episode starts identically; the
first act() returns lr0; every later act() first steps the scheduler once for the env step that just
happened (Plateau feeds it the metric from that step's info) and then returns the dummy optimizer's LR.
So an episode of T actions reads the scheduler at steps 0..T-1: a schedule with a fixed length (one_cycle,
warmup_cosine) is built for T = env.cfg.episode_steps and refuses to be stepped past it.
"""

from __future__ import annotations

import abc
import inspect
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch.optim import lr_scheduler

from rlsched.control.base import Controller

if TYPE_CHECKING:
    from rlsched.env.lr_control import LRControlEnv

UNITS = ("step", "epoch")
ANNEAL_STRATEGIES = ("cos", "linear")
PLATEAU_MODES = ("min", "max")
THRESHOLD_MODES = ("rel", "abs")
# Per-step info keys a plateau can watch, with the mode under which "better" is right for each.
PLATEAU_METRICS = {"val_loss": "min", "train_loss": "min", "val_accuracy": "max"}


def _positive(name: str, value: float) -> float:
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{name} must be > 0, got {value}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return float(value)


def _gamma(value: float) -> float:
    if not 0 < value <= 1:
        raise ValueError(f"gamma must be in (0, 1] (a decay factor), got {value}")
    return float(value)


def _int_at_least(name: str, value: int, low: int) -> int:
    if value != int(value) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value}")
    return int(value)


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed: {list(allowed)}")
    return value


class _TorchSchedule(Controller):
    """A controller whose LR is whatever a torch scheduler sets on a one-parameter SGD optimizer."""

    kind: ClassVar[str]

    def __init__(self, lr: float, name: str | None) -> None:
        self.lr0 = _positive("lr", lr)
        self.name = name or self.kind
        self._opt: torch.optim.Optimizer | None = None
        self._sched: lr_scheduler.LRScheduler | None = None
        self._first = True
        self._horizon: int | None = None  # actions the schedule is built for; None: no fixed length
        self._acts = 0

    @abc.abstractmethod
    def _make_scheduler(self, opt: torch.optim.Optimizer, env: LRControlEnv) -> lr_scheduler.LRScheduler: ...

    def _advance(self, info: dict[str, Any]) -> None:
        assert self._sched is not None
        self._sched.step()

    def reset(self, env: LRControlEnv, obs: np.ndarray, info: dict[str, Any]) -> None:
        self._opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=self.lr0)
        self._sched = self._make_scheduler(self._opt, env)
        self._first = True
        self._acts = 0

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> float:
        if self._opt is None:
            raise RuntimeError(f"{self!r}: call reset() after env.reset() and before act()")
        if self._horizon is not None and self._acts >= self._horizon:
            # Past its length a fixed-length schedule is undefined (OneCycleLR raises, a cosine rises again).
            raise RuntimeError(
                f"{self!r} was built for {self._horizon} actions (env.cfg.episode_steps at reset) and was asked "
                f"for action {self._acts + 1}; reset() it with the env whose episode it runs"
            )
        self._acts += 1
        if self._first:
            self._first = False
        else:
            # The parameter has no grad, so this is a no-op; it only tells torch the optimizer stepped,
            # which silences its "scheduler.step() before optimizer.step()" warning.
            self._opt.step()
            self._advance(info)
        return float(self._opt.param_groups[0]["lr"])


class ConstantLR(_TorchSchedule):
    kind = "constant"

    def __init__(self, lr: float, *, name: str | None = None) -> None:
        super().__init__(lr, name)

    def _make_scheduler(self, opt: torch.optim.Optimizer, env: LRControlEnv) -> lr_scheduler.LRScheduler:
        return lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


class StepDecay(_TorchSchedule):
    """Multiply the LR by `gamma` every `step_size` env steps (unit="step") or epochs (unit="epoch")."""

    kind = "step_decay"

    def __init__(
        self, lr: float, gamma: float, step_size: float, unit: str = "step", *, name: str | None = None
    ) -> None:
        super().__init__(lr, name)
        self.gamma = _gamma(gamma)
        self.unit = _one_of("unit", unit, UNITS)
        if unit == "step":
            self.step_size: float = _int_at_least("step_size", step_size, 1)
        elif not step_size >= 1:
            raise ValueError(f"step_size must be >= 1 epoch, got {step_size}")
        else:
            self.step_size = float(step_size)
        self.step_size_steps: int | None = None  # known once reset() has seen the env
        self.derived = ("step_size_steps",)

    def _make_scheduler(self, opt: torch.optim.Optimizer, env: LRControlEnv) -> lr_scheduler.LRScheduler:
        if self.unit == "epoch":
            self.step_size_steps = max(1, round(self.step_size * env.steps_per_epoch))
        else:
            self.step_size_steps = int(self.step_size)
        return lr_scheduler.StepLR(opt, step_size=self.step_size_steps, gamma=self.gamma)


class Exponential(_TorchSchedule):
    kind = "exponential"

    def __init__(self, lr: float, gamma: float, *, name: str | None = None) -> None:
        super().__init__(lr, name)
        self.gamma = _gamma(gamma)

    def _make_scheduler(self, opt: torch.optim.Optimizer, env: LRControlEnv) -> lr_scheduler.LRScheduler:
        return lr_scheduler.ExponentialLR(opt, gamma=self.gamma)


class Cosine(_TorchSchedule):
    """Cosine annealing from lr to eta_min over t_max env steps (None: the episode length)."""

    kind = "cosine"

    def __init__(self, lr: float, eta_min: float = 0.0, t_max: int | None = None, *, name: str | None = None) -> None:
        super().__init__(lr, name)
        self.eta_min = _non_negative("eta_min", eta_min)
        self.t_max = None if t_max is None else _int_at_least("t_max", t_max, 1)

    def _make_scheduler(self, opt: torch.optim.Optimizer, env: LRControlEnv) -> lr_scheduler.LRScheduler:
        t_max = self.t_max if self.t_max is not None else int(env.cfg.episode_steps)
        return lr_scheduler.CosineAnnealingLR(opt, T_max=t_max, eta_min=self.eta_min)


class Plateau(_TorchSchedule):
    """ReduceLROnPlateau fed `info[metric]` after every env step (so patience/cooldown count env steps)."""

    kind = "plateau"

    def __init__(
        self,
        lr: float,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
        metric: str = "val_loss",
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(lr, name)
        self.mode = _one_of("mode", mode, PLATEAU_MODES)
        self.metric = _one_of("metric", metric, tuple(PLATEAU_METRICS))
        if PLATEAU_METRICS[metric] != mode:
            # The other pairing would cut the LR while the metric improves.
            raise ValueError(f"metric {metric!r} needs mode={PLATEAU_METRICS[metric]!r}, got mode={mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1) (the LR is multiplied by it), got {factor}")
        self.factor = float(factor)
        self.patience = _int_at_least("patience", patience, 0)
        self.cooldown = _int_at_least("cooldown", cooldown, 0)
        self.threshold = _non_negative("threshold", threshold)
        self.threshold_mode = _one_of("threshold_mode", threshold_mode, THRESHOLD_MODES)
        self.min_lr = _non_negative("min_lr", min_lr)
        self.eps = _non_negative("eps", eps)

    def _make_scheduler(self, opt: torch.optim.Optimizer, env: LRControlEnv) -> lr_scheduler.LRScheduler:
        return lr_scheduler.ReduceLROnPlateau(
            opt,
            mode=self.mode,
            factor=self.factor,
            patience=self.patience,
            threshold=self.threshold,
            threshold_mode=self.threshold_mode,
            cooldown=self.cooldown,
            min_lr=self.min_lr,
            eps=self.eps,
        )

    def _advance(self, info: dict[str, Any]) -> None:
        if self.metric not in info:
            raise KeyError(f"{self!r} watches info[{self.metric!r}], which the step's info lacks")
        value = float(info[self.metric])
        if not math.isfinite(value):
            raise ValueError(f"{self!r}: info[{self.metric!r}] is {value}; a diverged run should have ended")
        assert isinstance(self._sched, lr_scheduler.ReduceLROnPlateau)
        self._sched.step(value)


def _episode_steps(env: LRControlEnv) -> int:
    return int(env.cfg.episode_steps)


class OneCycle(_TorchSchedule):
    """OneCycleLR over the episode: warm up from lr/div_factor to lr (= max_lr) during the first pct_start of
    the episode, then anneal ("cos" or "linear") to lr/(div_factor*final_div_factor) at the last action.

    total_steps is the episode's number of actions, so the last action gets the final LR. Only the LR is
    scheduled: cycle_momentum=False, because the trainee's optimizer keeps its own momentum (Adam's betas).
    """

    kind = "one_cycle"
    derived = ("total_steps",)

    def __init__(
        self,
        lr: float,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(lr, name)
        if not 0 < pct_start < 1:
            raise ValueError(f"pct_start must be in (0, 1) (the warm-up's share of the episode), got {pct_start}")
        self.pct_start = float(pct_start)
        self.anneal_strategy = _one_of("anneal_strategy", anneal_strategy, ANNEAL_STRATEGIES)
        if not div_factor >= 1:
            raise ValueError(f"div_factor must be >= 1 (the warm-up starts at lr/div_factor), got {div_factor}")
        self.div_factor = float(div_factor)
        if not final_div_factor >= 1:
            raise ValueError(
                f"final_div_factor must be >= 1 (the run ends at lr/(div_factor*final_div_factor)), "
                f"got {final_div_factor}"
            )
        self.final_div_factor = float(final_div_factor)
        self.total_steps: int | None = None  # known once reset() has seen the env

    def _make_scheduler(self, opt: torch.optim.Optimizer, env: LRControlEnv) -> lr_scheduler.LRScheduler:
        total = _episode_steps(env)
        # OneCycleLR peaks at step pct_start*total - 1 and divides by that step count: at 0 it fails, and
        # below 0 there is no warm-up at all.
        if not self.pct_start * total > 1:
            raise ValueError(
                f"{self!r}: pct_start={self.pct_start} of a {total}-action episode is a warm-up of "
                f"{self.pct_start * total:.2f} steps; it must exceed 1 (use pct_start > {1 / total:.4f})"
            )
        self.total_steps = self._horizon = total
        return lr_scheduler.OneCycleLR(
            opt,
            max_lr=self.lr0,
            total_steps=total,
            pct_start=self.pct_start,
            anneal_strategy=self.anneal_strategy,
            cycle_momentum=False,
            div_factor=self.div_factor,
            final_div_factor=self.final_div_factor,
        )


class WarmupCosine(_TorchSchedule):
    """Linear warm-up from lr*start_factor to lr over warmup_steps actions, then cosine annealing to eta_min.

    torch's SequentialLR([LinearLR, CosineAnnealingLR(T_max=episode_steps - warmup_steps)]). The warm-up is
    `warmup_steps` actions or a fraction `warmup_frac` of the episode (rounded, at least 1 action and at
    most episode_steps - 1, so both phases exist); give exactly one.
    """

    kind = "warmup_cosine"
    derived = ("warmup_steps_used",)

    def __init__(
        self,
        lr: float,
        warmup_frac: float | None = None,
        warmup_steps: int | None = None,
        start_factor: float = 0.1,
        eta_min: float = 0.0,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(lr, name)
        if (warmup_frac is None) == (warmup_steps is None):
            raise ValueError(
                f"give exactly one of warmup_frac (share of the episode) and warmup_steps (actions), got "
                f"warmup_frac={warmup_frac}, warmup_steps={warmup_steps}"
            )
        if warmup_frac is not None and not 0 < warmup_frac < 1:
            raise ValueError(f"warmup_frac must be in (0, 1) (the warm-up's share of the episode), got {warmup_frac}")
        self.warmup_frac = None if warmup_frac is None else float(warmup_frac)
        self.warmup_steps = None if warmup_steps is None else _int_at_least("warmup_steps", warmup_steps, 1)
        if not 0 < start_factor <= 1:
            raise ValueError(
                f"start_factor must be in (0, 1] (the warm-up starts at lr*start_factor), got {start_factor}"
            )
        self.start_factor = float(start_factor)
        self.eta_min = _non_negative("eta_min", eta_min)
        if not self.eta_min < self.lr0:
            raise ValueError(f"eta_min must be < lr (cosine anneals down to it), got eta_min={eta_min}, lr={lr}")
        self.warmup_steps_used: int | None = None  # known once reset() has seen the env

    def _warmup(self, total: int) -> int:
        if total < 2:
            raise ValueError(f"{self!r} needs an episode of at least 2 actions (warm-up, then decay), got {total}")
        if self.warmup_steps is not None:
            if self.warmup_steps >= total:
                raise ValueError(
                    f"{self!r}: warmup_steps={self.warmup_steps} leaves no cosine phase in a {total}-action "
                    f"episode; use warmup_steps <= {total - 1}"
                )
            return self.warmup_steps
        assert self.warmup_frac is not None
        return min(total - 1, max(1, round(self.warmup_frac * total)))

    def _make_scheduler(self, opt: torch.optim.Optimizer, env: LRControlEnv) -> lr_scheduler.LRScheduler:
        total = _episode_steps(env)
        warm = self._warmup(total)
        self.warmup_steps_used, self._horizon = warm, total
        return lr_scheduler.SequentialLR(
            opt,
            [
                lr_scheduler.LinearLR(opt, start_factor=self.start_factor, end_factor=1.0, total_iters=warm),
                lr_scheduler.CosineAnnealingLR(opt, T_max=total - warm, eta_min=self.eta_min),
            ],
            milestones=[warm],
        )


BASELINES: dict[str, type[_TorchSchedule]] = {
    "constant": ConstantLR,
    "step_decay": StepDecay,
    "exponential": Exponential,
    "cosine": Cosine,
    "plateau": Plateau,
    "one_cycle": OneCycle,
    "warmup_cosine": WarmupCosine,
}


def make_controller(kind: str, name: str | None = None, **params: Any) -> Controller:
    """Build the baseline registered as `kind`, labelled `name` (default: `kind`)."""
    if kind not in BASELINES:
        raise ValueError(f"unknown controller {kind!r}; allowed: {sorted(BASELINES)}")
    cls = BASELINES[kind]
    sig = {k: p for k, p in inspect.signature(cls.__init__).parameters.items() if k not in ("self", "name")}
    unknown = sorted(set(params) - set(sig))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for controller {kind!r}; accepted: {list(sig)}")
    missing = [k for k, p in sig.items() if p.default is inspect.Parameter.empty and k not in params]
    if missing:
        raise ValueError(f"controller {kind!r} needs parameter(s) {missing}; accepted: {list(sig)}")
    return cls(**params, name=name or kind)
