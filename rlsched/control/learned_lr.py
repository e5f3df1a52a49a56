"""`LearnedLR`: a trained controller as a learning-rate scheduler in anyone's PyTorch training loop.

The controller acts exactly as it does in `rlsched/LRControl-v1`: the same `rlsched.env.observer.Observer` turns the
run's signals into the observation, the artifact's VecNormalize statistics normalize it, the policy answers
(deterministically) and the same `rlsched.env.actions` map turns its action into the next learning rate. Only the
source of the signals changes: the user's loop instead of the env's `Trainee`.

Timing, as in the env: at construction the untrained model is evaluated on one training batch and on the probe
(the env's t=0 observation) and the first rate is set; then every `steps_per_action` (K) calls of
`step(train_loss, train_logits)` (one per optimizer step) the probe is evaluated, the observation built and the
next rate set. `train_loss` enters as the mean over the K steps and `train_logits` (those of the last batch)
feed the prediction features.

    sched = LearnedLR(opt, "docs/results/demo_controller", model=net, probe=(x_val, y_val),
                      initial_batch=next(iter(train_loader)), total_steps=epochs * len(train_loader))
    for x, y in train_loader:
        logits = net(x); loss = F.cross_entropy(logits, y)
        opt.zero_grad(); loss.backward(); opt.step()
        sched.step(loss, logits)

It is a `torch.optim.lr_scheduler.LRScheduler`, so it composes with torch's own: `SequentialLR` (a fixed warm-up,
then the controller, which starts its run at the milestone from the warmed-up model and rate), `ChainedScheduler`,
and Lightning's `configure_optimizers` with `"interval": "step"` (`rlsched.control.lightning.LearnedLRCallback` hands it
each step's loss and logits). Inside a chain, which calls `step()` with no arguments, call `observe(loss, logits)`
after the optimizer step and before the chain's `step()`:

    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=100)
    learned = LearnedLR(opt, "docs/results/demo_controller", ..., total_steps=total - 100)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warmup, learned], milestones=[100])
    ...; opt.step(); learned.observe(loss, logits); sched.step()

Loading needs torch and stable-baselines3 only (no Hydra, W&B or data).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from rlsched.control.artifact import Artifact, ArtifactError, load_artifact
from rlsched.env.actions import ActionMap, make_action_map
from rlsched.env.lr_control import EnvConfig
from rlsched.env.observer import Observer
from rlsched.env.trainee import evaluate

# What a probe evaluation returns: (mean loss, accuracy, logits), tensors on any device.
Evaluation = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
ProbeSpec = tuple[torch.Tensor, torch.Tensor] | Callable[[], Sequence[torch.Tensor]]
STATE_VERSION = 1


def _as_artifact(artifact: str | Path | Artifact) -> Artifact:
    if isinstance(artifact, Artifact):
        return artifact
    if isinstance(artifact, str | Path):
        return load_artifact(artifact)
    raise TypeError(f"artifact must be a controller folder (str or Path) or a loaded Artifact, got {artifact!r}")


def _artifact_env_config(art: Artifact, overrides: dict[str, Any]) -> EnvConfig:
    """The artifact's env config, validated by the env's own EnvConfig, with this run's length, K and LRs.

    Refuses a config the env could not build (an unknown feature or action type, an option this version does
    not know) with an ArtifactError that names the artifact and the mismatch.
    """
    known = {f.name for f in fields(EnvConfig)}
    unknown = sorted(set(art.env_config) - known)
    if unknown:
        raise ArtifactError(
            f"controller artifact {art.path}: env_config.json has option(s) {unknown} this version of rlsched does "
            "not know, so their meaning for the controller is unknown; use the rlsched version that trained it"
        )
    try:
        cfg = EnvConfig.from_kwargs(**{**art.env_config, **overrides})
    except ValueError as err:
        raise ArtifactError(f"controller artifact {art.path} cannot be used: {err}") from err
    if list(cfg.features) != list(art.meta["feature_names"]):
        raise ArtifactError(
            f"controller artifact {art.path}: meta.json lists features {art.meta['feature_names']} but "
            f"env_config.json has {list(cfg.features)}; the artifact is inconsistent"
        )
    if cfg.action != art.meta["action"]:
        raise ArtifactError(
            f"controller artifact {art.path}: meta.json says action {art.meta['action']!r}, env_config.json says "
            f"{cfg.action!r}; the artifact is inconsistent"
        )
    return cfg


def _check_policy_fits(art: Artifact, observer: Observer, action_map: ActionMap) -> None:
    """The policy takes the Observer's observation and answers in the action map's space."""
    obs_shape, act_space = tuple(art.model.observation_space.shape), art.model.action_space
    if obs_shape != observer.space.shape:
        raise ArtifactError(
            f"controller artifact {art.path}: the policy takes observations of shape {obs_shape}, the features "
            f"{observer.feature_names} make {observer.space.shape}"
        )
    rms_shape = tuple(np.shape(art.vecnormalize.obs_rms.mean))
    if rms_shape != obs_shape:
        raise ArtifactError(
            f"controller artifact {art.path}: vecnormalize.pkl normalizes observations of shape {rms_shape}, the "
            f"policy takes {obs_shape}; the two files come from different runs"
        )
    want = action_map.space
    if (
        type(act_space) is not type(want)
        or act_space.shape != want.shape
        or getattr(act_space, "n", None) != getattr(want, "n", None)
    ):
        raise ArtifactError(
            f"controller artifact {art.path}: its policy acts in {act_space} but action type "
            f"{art.meta['action']!r} needs {want}"
        )


def default_observed(
    model: nn.Module, within: Collection[torch.Tensor] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The env's choice of observed layers: a model's own `feature_params()` if it has one (rlsched's trainees),
    else the weights of its last two `nn.Linear`, else the kernel and bias of its only one (as for the ResNet).

    `within`: the parameters the scheduler drives, when they are only part of the model's; the same choice is then
    made among the `nn.Linear` layers they hold, as the env chooses for `controlled_params`."""
    ids = None if within is None else {id(p) for p in within}
    whole = ids is None or all(id(p) in ids for p in model.parameters())
    if whole and hasattr(model, "feature_params"):
        return tuple(model.feature_params())  # type: ignore[return-value]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and (whole or id(m.weight) in ids)]
    if len(linears) >= 2:
        return linears[-2].weight, linears[-1].weight
    if len(linears) == 1 and linears[0].bias is not None and (whole or id(linears[0].bias) in ids):
        return linears[0].weight, linears[0].bias
    where = f"{type(model).__name__} has" if whole else "the controlled param group(s) hold"
    raise ValueError(
        f"{where} {len(linears)} nn.Linear layer(s) (or one without its bias), so the observed layers cannot be "
        "chosen; pass observed=(penultimate_weight, last_weight)"
    )


def _evaluator(spec: ProbeSpec, model: nn.Module | None, chunk: int, what: str) -> Callable[[], Evaluation]:
    """`spec` as a function returning (loss, accuracy, logits): tensors (x, y) evaluated by `model`, or the user's
    callable returning (loss, logits) or (loss, logits, accuracy) (accuracy NaN when absent)."""
    if callable(spec):

        def call() -> Evaluation:
            with torch.no_grad():
                out = spec()
            if not isinstance(out, Sequence) or len(out) not in (2, 3):
                raise ValueError(f"{what} callable must return (loss, logits) or (loss, logits, accuracy), got {out!r}")
            loss = torch.as_tensor(out[0]).detach().reshape(())
            logits = out[1].detach()
            acc = torch.as_tensor(out[2] if len(out) == 3 else float("nan"), device=loss.device)
            return loss, acc.detach().reshape(()).float(), logits

        return call
    if isinstance(spec, Sequence) and len(spec) == 2 and all(isinstance(t, torch.Tensor) for t in spec):
        if model is None:
            raise ValueError(f"{what}=(x, y) needs model= to evaluate it; or pass a callable returning (loss, logits)")
        x, y = spec
        if len(x) != len(y) or len(x) == 0:
            raise ValueError(f"{what}=(x, y) needs as many targets as inputs (at least one), got {len(x)}, {len(y)}")
        return lambda: evaluate(model, x, y, chunk)
    raise TypeError(f"{what} must be tensors (x, y) with model=, or a callable returning (loss, logits); got {spec!r}")


class LearnedLR(LRScheduler):
    """A trained rlsched controller driving the learning rate of `optimizer`'s param groups, as an `LRScheduler`.

    `artifact`: a controller folder (model.zip, vecnormalize.pkl, env_config.json, meta.json) or a loaded
    `rlsched.control.artifact.Artifact`. `total_steps`: the optimizer steps of the whole run (the `progress` feature and
    the env's episode length are counted in actions, total_steps // K). `steps_per_action`: K, the optimizer steps
    between two decisions (default: the artifact's; with `scale_per=optimizer_step` one action moves the LR by
    up to the K-th power of the multiplier range, as in the env).

    `probe`: the validation probe evaluated at every decision, either tensors `(x, y)` (with `model=`, evaluated
    in eval mode with cross-entropy) or a callable returning `(loss, logits)` or `(loss, logits, accuracy)`.
    `initial_batch`: one training batch (same size as the training batches), evaluated the same way before any
    training for the first observation, as the env does. `observed`: the (penultimate, last) parameters whose
    statistics are features (default: from `model`, see `default_observed`; with `param_groups` holding part of
    the model, from the layers in those groups, as the env chooses for `controlled_params`).

    `param_groups`: indices of the groups this scheduler drives (default: all). They must start at one LR; the
    others are left alone, so they can follow their own scheduler. LearnedLR writes its rate into its groups at
    every `step()`, so call it after another scheduler's `step()` if that one touches all groups (StepLR does).
    `lr_min`/`lr_max` override the artifact's LR bounds. `deterministic=False` samples the policy's actions.

    Outside what the controller was trained on, as the env ends the episode there: stepped past `total_steps`, it
    warns once and holds the rate. A non-finite training loss, logits or probe loss raises FloatingPointError with
    `on_nonfinite="raise"` (default), or with `"hold"` warns once and holds the rate from there on (no more
    decisions: the observation would be meaningless).

    As an `LRScheduler`: `get_last_lr()` has one rate per param group of the optimizer (the others' own rates),
    `last_epoch` counts `step()` calls since the run started. A run starts when the scheduler's epoch is 0: at
    construction, or at `SequentialLR`'s milestone, where the untrained-model observation of the env's reset is
    taken of the model as the warm-up left it, from the rate the warm-up left.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        artifact: str | Path | Artifact,
        *,
        total_steps: int,
        probe: ProbeSpec,
        initial_batch: ProbeSpec,
        model: nn.Module | None = None,
        observed: tuple[torch.Tensor, torch.Tensor] | None = None,
        steps_per_action: int | None = None,
        param_groups: Sequence[int] | None = None,
        lr_min: float | None = None,
        lr_max: float | None = None,
        deterministic: bool = True,
        on_nonfinite: str = "raise",
    ) -> None:
        if on_nonfinite not in ("raise", "hold"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'hold', got {on_nonfinite!r}")
        self.on_nonfinite = on_nonfinite
        self.held: str | None = None  # why the rate is held (past total_steps, non-finite input), or None
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not a torch.optim.Optimizer")
        self.optimizer = optimizer
        self.param_groups = self._check_groups(optimizer, param_groups)
        self.artifact = _as_artifact(artifact)
        art_cfg = self.artifact.env_config
        k = art_cfg.get("steps_per_action", 1) if steps_per_action is None else steps_per_action
        self.steps_per_action = self._check_count("steps_per_action", k, 1)
        self.total_steps = self._check_count("total_steps", total_steps, self.steps_per_action)
        self.lr = self._initial_lr()
        overrides: dict[str, Any] = {
            "steps_per_action": self.steps_per_action,
            "episode_steps": self.total_steps // self.steps_per_action,
            "initial_lr": self.lr,
        }
        if lr_min is not None:
            overrides["lr_min"] = lr_min
        if lr_max is not None:
            overrides["lr_max"] = lr_max
        self._check_lr_in_bounds(
            overrides.get("lr_min", art_cfg.get("lr_min", EnvConfig.lr_min)),
            overrides.get("lr_max", art_cfg.get("lr_max", EnvConfig.lr_max)),
        )
        self.cfg = _artifact_env_config(self.artifact, overrides)
        self.observer = Observer.from_config(self.cfg)
        self.action_map = make_action_map(self.cfg)
        _check_policy_fits(self.artifact, self.observer, self.action_map)
        self.deterministic = deterministic
        self.observed = self._check_observed(model if observed is None else None, observed)
        chunk = self.cfg.eval_batch_size
        self._probe = _evaluator(probe, model, chunk, "probe")
        self._initial = _evaluator(initial_batch, model, chunk, "initial_batch")
        self._needs_accuracy = "val_accuracy" in self.observer.feature_names
        self._pending: tuple[torch.Tensor, torch.Tensor | None] | None = None  # observe()'d, not yet step()ped
        self._reset_run()
        # LRScheduler's constructor takes the first step (epoch 0), which starts the run: see get_lr.
        super().__init__(optimizer)

    # ----- construction checks ---------------------------------------------------------------------------
    @staticmethod
    def _check_groups(optimizer: torch.optim.Optimizer, groups: Sequence[int] | None) -> list[int]:
        n = len(optimizer.param_groups)
        if groups is None:
            return list(range(n))
        chosen = list(groups)
        bad = [g for g in chosen if isinstance(g, bool) or not isinstance(g, int) or not 0 <= g < n]
        if bad or not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(
                f"param_groups must be distinct indices of the optimizer's {n} param group(s) (0..{n - 1}), "
                f"got {chosen}"
            )
        return chosen

    @staticmethod
    def _check_count(name: str, value: Any, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        return int(value)

    def _initial_lr(self) -> float:
        lrs = [float(self.optimizer.param_groups[g]["lr"]) for g in self.param_groups]
        if len(set(lrs)) != 1:
            raise ValueError(
                f"the controlled param groups {self.param_groups} start at different LRs {lrs}; the controller "
                "drives one rate, so give them the same lr (or control them with separate LearnedLR instances)"
            )
        return lrs[0]

    def _check_lr_in_bounds(self, lo: float, hi: float) -> None:
        if not lo <= self.lr <= hi:
            raise ValueError(
                f"the optimizer's lr {self.lr} lies outside the controller's range [{lo}, {hi}]; start the optimizer "
                "inside it, or pass lr_min=/lr_max="
            )

    def _check_observed(
        self, model: nn.Module | None, observed: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        controlled = [p for g in self.param_groups for p in self.optimizer.param_groups[g]["params"]]
        if observed is None:
            if model is None:
                raise ValueError("pass model= (its last two nn.Linear are observed) or observed=(penultimate, last)")
            observed = default_observed(model, controlled)
        if len(observed) != 2 or not all(isinstance(p, torch.Tensor) for p in observed):
            raise ValueError(f"observed must be two tensors (penultimate, last), got {observed!r}")
        ids = {id(p) for p in controlled}
        outside = [i for i, p in enumerate(observed) if id(p) not in ids]
        if outside:
            which = " and ".join(("penultimate", "last")[i] for i in outside)
            raise ValueError(
                f"the observed {which} parameter is not in the controlled param group(s) {self.param_groups}; the "
                "features must come from the layers the controller drives: pass observed= from those groups"
            )
        return observed[0], observed[1]

    # ----- the run ---------------------------------------------------------------------------------------
    def _reset_run(self) -> None:
        self.observer.reset()
        self.optimizer_steps = 0
        self.t = 0  # decisions taken after the first (the env's step count)
        self._losses: list[torch.Tensor] = []
        self._last_logits: torch.Tensor | None = None
        self._pred_shape: tuple[int, ...] | None = None
        self._policy_state: tuple[np.ndarray, ...] | None = None  # a recurrent policy's LSTM state
        self._episode_start = True
        self.last_features: dict[str, float] = {}

    def _start(self) -> None:
        """The env's reset: observe the untrained model on one training batch and the probe, then act."""
        train_loss, _, train_logits = self._initial()
        self._decide(train_loss, train_logits)

    def observe(self, train_loss: torch.Tensor | float, train_logits: torch.Tensor | None = None) -> None:
        """Hand over this optimizer step's training loss and its batch's logits (computed before the update, as the
        loss was), for the next `step()`. A second call before that `step()` replaces the first: a scheduler not
        stepped yet (say, during SequentialLR's warm-up) keeps only the latest."""
        loss = train_loss.detach() if isinstance(train_loss, torch.Tensor) else torch.tensor(float(train_loss))
        if loss.numel() != 1:
            raise ValueError(f"train_loss must be one number (the batch's mean loss), got shape {tuple(loss.shape)}")
        self._pending = (loss.reshape(()), None if train_logits is None else train_logits.detach())

    def step(  # type: ignore[override]
        self, train_loss: torch.Tensor | float | None = None, train_logits: torch.Tensor | None = None
    ) -> None:
        """Call after every optimizer step, with its training loss and its batch's logits, or with no arguments
        after `observe(loss, logits)` (as `SequentialLR`, `ChainedScheduler` and Lightning call it). Every K-th
        step evaluates the probe and sets the next LR."""
        if isinstance(train_loss, int) and not isinstance(train_loss, bool):
            # LRScheduler's deprecated step(epoch), which older torch's SequentialLR calls at a milestone (step(0)):
            # an epoch, not a loss. Epoch 0 starts the controller's run, as _update_lr(0) does in newer torch.
            super().step(train_loss)
            return
        if train_loss is not None:
            self.observe(train_loss, train_logits)
        super().step()

    def get_lr(self) -> list[float]:
        """LRScheduler's hook, called by `step()` (and at SequentialLR's milestone with the epoch set to 0): at
        epoch 0 the run starts, later it takes the observed step. One rate per param group: the controlled ones
        get the controller's, the others keep theirs."""
        if self.last_epoch == 0:
            self._reset_run()
            self._pending = None
            self.lr = self._initial_lr()
            self._start()
        else:
            self._take_step()
        mine = set(self.param_groups)
        return [self.lr if g in mine else group["lr"] for g, group in enumerate(self.optimizer.param_groups)]

    def _take_step(self) -> None:
        if self._pending is None:
            raise ValueError(
                "LearnedLR.step() needs this optimizer step's training loss (and logits): call step(loss, logits), "
                "or observe(loss, logits) before a step() without arguments; in Lightning add "
                "rlsched.control.lightning.LearnedLRCallback() to the Trainer's callbacks"
            )
        loss, logits = self._pending
        self._pending = None
        self._losses.append(loss)
        if logits is not None:
            self._last_logits = logits
        self.optimizer_steps += 1
        if self.held is None and self.optimizer_steps > self.total_steps:
            self._hold(
                f"stepped past total_steps={self.total_steps}: the controller was trained on runs of that length "
                f"(the env ends the episode there), so the rate is held at {self.lr:.4g} from here"
            )
        if self.held is not None:
            self._losses = []
        elif len(self._losses) == self.steps_per_action:
            # The mean over the K steps, computed as the env computes it.
            mean = self._losses[0] if len(self._losses) == 1 else torch.stack(self._losses).mean()
            self._losses = []
            self.t += 1
            self._decide(mean, self._last_logits)

    def _hold(self, why: str) -> None:
        self.held = why
        warnings.warn(f"LearnedLR: {why}", stacklevel=3)

    def _finite(self, **values: torch.Tensor | None) -> bool:
        """Whether every value is finite; otherwise raise or hold (on_nonfinite). One sync per decision."""
        bad = [name for name, v in values.items() if v is not None and not bool(torch.isfinite(v).all())]
        if not bad:
            return True
        why = f"non-finite {' and '.join(bad)} at optimizer step {self.optimizer_steps}"
        if self.on_nonfinite == "raise":
            raise FloatingPointError(
                f"LearnedLR: {why}; the controller never saw a diverged run (the env ends the episode there). "
                "Lower the LR bounds, or pass on_nonfinite='hold' to keep the last rate instead"
            )
        self._hold(f"{why}: the rate is held at {self.lr:.4g} from here (on_nonfinite='hold')")
        return False

    def _decide(self, train_loss: torch.Tensor, train_logits: torch.Tensor | None) -> None:
        val_loss, val_acc, val_logits = self._probe()
        if not self._finite(
            train_loss=train_loss, train_logits=train_logits, probe_loss=val_loss, probe_logits=val_logits
        ):
            return
        if self._needs_accuracy and bool(torch.isnan(val_acc)):
            raise ValueError("the controller observes val_accuracy: the probe callable must return (loss, logits, acc)")
        preds = val_logits if self.cfg.prediction_source == "validation" else train_logits
        if preds is None:
            raise ValueError(
                "the controller observes the training batch's predictions: call step(loss, logits) (or observe(loss, "
                'logits)); in Lightning return {"loss": loss, "logits": logits} from training_step'
            )
        self._check_pred_shape(tuple(preds.shape))
        if train_logits is None:
            train_logits = val_logits  # unused by the Observer when predictions come from the probe
        obs, raw = self.observer.observe(
            train_loss=train_loss.to(val_loss.device),  # a float passed to step() arrives on the CPU
            train_logits=train_logits,
            val_loss=val_loss,
            val_acc=val_acc,
            val_logits=val_logits,
            observed_params=self.observed,
            lr=self.lr,
            t=self.t,
        )
        self.last_features = raw
        self.lr = self.action_map.to_lr(self.lr, self._act(obs), self.t)

    def _check_pred_shape(self, shape: tuple[int, ...]) -> None:
        # The prediction-change feature compares two decisions' predictions element by element.
        if self._pred_shape is not None and shape != self._pred_shape:
            raise ValueError(
                f"the logits the controller observes changed shape from {self._pred_shape} to {shape}: every "
                "training batch (and initial_batch) must have the same size; use DataLoader(..., drop_last=True)"
            )
        self._pred_shape = shape

    def _act(self, obs: np.ndarray) -> Any:
        action, self._policy_state = self.artifact.predict(
            obs, self._policy_state, self._episode_start, self.deterministic
        )
        self._episode_start = False
        return action

    def _write_lr(self) -> None:
        for g in self.param_groups:
            self.optimizer.param_groups[g]["lr"] = self.lr

    # ----- checkpoints -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs (tensors and plain values only: loads with torch.load(weights_only=True))."""
        obs = self.observer
        return {
            "version": STATE_VERSION,
            "feature_names": list(obs.feature_names),
            "steps_per_action": self.steps_per_action,
            "total_steps": self.total_steps,
            "param_groups": list(self.param_groups),
            "lr": self.lr,
            "optimizer_steps": self.optimizer_steps,
            "t": self.t,
            "pending_losses": torch.stack(self._losses).cpu() if self._losses else None,
            "last_logits": None if self._last_logits is None else self._last_logits.cpu(),
            "pred_shape": self._pred_shape,
            # The Observer's running state: its EMAs and the previous predictions.
            "observer": {
                "pred_ema": obs._pred_ema,
                "change_ema": obs._change_ema,
                "prev_probs": None if obs._prev_probs is None else obs._prev_probs.cpu(),
            },
            "policy_state": None
            if self._policy_state is None
            else tuple(torch.from_numpy(np.array(s)) for s in self._policy_state),
            "episode_start": self._episode_start,
            # LRScheduler's own counters, so that a chain (SequentialLR) resumes at the same epoch.
            "last_epoch": self.last_epoch,
            "step_count": self._step_count,
            "base_lrs": [float(v) for v in self.base_lrs],
            "last_lr": [float(v) for v in self._last_lr],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from `state_dict()`; refuses a state from another controller layout, K or set of groups."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"LearnedLR state version {state.get('version')!r} is not {STATE_VERSION}")
        for key, mine in (
            ("feature_names", list(self.observer.feature_names)),
            ("steps_per_action", self.steps_per_action),
            ("total_steps", self.total_steps),
            ("param_groups", list(self.param_groups)),
        ):
            if state[key] != mine:
                raise ValueError(f"the saved LearnedLR has {key}={state[key]!r}, this one {mine!r}; build it alike")
        device = self.observed[0].device
        self.lr = float(state["lr"])
        self.optimizer_steps, self.t = int(state["optimizer_steps"]), int(state["t"])
        pending = state["pending_losses"]
        self._losses = [] if pending is None else [v.to(device) for v in pending.unbind()]
        logits = state["last_logits"]
        self._last_logits = None if logits is None else logits.to(device)
        self._pred_shape = None if state["pred_shape"] is None else tuple(state["pred_shape"])
        o = state["observer"]
        self.observer._pred_ema, self.observer._change_ema = o["pred_ema"], o["change_ema"]
        self.observer._prev_probs = None if o["prev_probs"] is None else o["prev_probs"].to(device)
        ps = state["policy_state"]
        self._policy_state = None if ps is None else tuple(s.numpy() for s in ps)
        self._episode_start = bool(state["episode_start"])
        self._pending = None
        # States saved before LearnedLR was an LRScheduler lack its counters: one step per optimizer step since start.
        self.last_epoch = int(state.get("last_epoch", self.optimizer_steps))
        self._step_count = int(state.get("step_count", self.optimizer_steps + 1))
        self.base_lrs = list(state.get("base_lrs", self.base_lrs))
        self._write_lr()
        self._last_lr = [float(group["lr"]) for group in self.optimizer.param_groups]
