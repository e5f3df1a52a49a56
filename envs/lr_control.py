"""LRControl-v0: a controller sets the learning rate of a network training on real data.

One step: the action sets the LR, the trainee takes K optimizer steps, the validation probe is evaluated,
and the env returns the observation and reward. Everything the env accepts is a field of `EnvConfig`;
every field is validated at construction, before any data is loaded or any training starts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from rlsched.data import DATASETS, check_sizes, make_splits
from rlsched.features import (
    DEFAULT_FEATURES,
    FEATURE_PRESETS,
    OBS_TRANSFORMS,
    centred_sum_of_squares,
    ema,
    feature_table,
    log_var,
    symlog,
)
from rlsched.models import MODELS, OPTIMIZERS, build_model
from rlsched.trainee import Trainee

ACTION_TYPES = ("scale", "discrete", "log_lr")
SCALE_PER = ("optimizer_step", "env_step")
REWARD_TYPES = ("neg_val_loss", "paper", "final_only", "log_diff")
PREDICTION_SOURCES = ("train", "validation")


@dataclass
class EnvConfig:
    # data
    dataset: str = "fashion_mnist"
    data_dir: str | None = None  # null: $RLSCHED_DATA_DIR, else download into ~/.cache/rlsched/data
    verify_checksums: bool = True
    train_size: int | None = None  # null: the whole training split (50k; CIFAR-10 45k)
    val_size: int | None = None  # null: the whole validation split (10k; CIFAR-10 5k)
    val_probe: int = 2000  # validation examples evaluated at every step
    test_size: int | None = None  # null: the whole official test set
    split_seed: int | None = None  # null: derived from the reset seed; an int fixes the split for all episodes
    # trainee
    model: str = "cnn"
    model_kwargs: dict = field(default_factory=dict)
    optimizer: str = "adam"
    initial_lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 1000
    eval_batch_size: int = 2000
    # episode
    steps_per_action: int = 1  # K optimizer steps per env step
    episode_steps: int = 100
    # action
    action: str = "scale"
    scale_range: tuple[float, float] = (0.965, 1.035)  # the paper's multiplier range, per optimizer step
    # "optimizer_step": the multiplier acts at each of the K optimizer steps, so one env step moves the LR by
    # up to x[low^K, high^K] (the paper's per-step range); "env_step": once per env step (the range K times
    # narrower in log space: over a short episode it cannot reach the rates tuned schedules use).
    scale_per: str = "optimizer_step"
    discrete_multipliers: tuple[float, ...] = (1 / 1.05, 1.0, 1.05)
    lr_min: float = 1e-5
    lr_max: float = 1e-1
    # observation
    features: tuple[str, ...] | str = DEFAULT_FEATURES  # a list of names or a preset: "default" | "paper"
    obs_transform: str = "none"
    ema_decay: float = 0.8
    prediction_source: str = "train"  # paper: the training batch; "validation": the fixed probe
    max_loss: float = 100.0  # losses above this count as divergence
    weight_bound: float = 100.0
    # reward
    reward: str = "neg_val_loss"
    reward_baseline: float = 2.0  # for reward="paper": baseline - val_loss
    divergence_loss: float | None = None  # null: 2 ln(num_classes); a diverged run is scored as if stuck there
    divergence_penalty: float | None = None  # overrides the computed penalty with a fixed reward
    # end-of-episode evaluation (never used in observation or reward, except final_only's full val loss)
    final_val_eval: bool = True
    test_eval: bool = True
    # compute
    device: str = "cpu"  # "cpu", "cuda", "cuda:N" or "auto"
    torch_threads: int | None = None

    @classmethod
    def from_kwargs(cls, **kwargs) -> EnvConfig:
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ValueError(f"unknown env option(s) {unknown}; allowed: {sorted(allowed)}")
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def one_of(name: str, value, allowed) -> None:
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; allowed: {sorted(allowed)}")

        one_of("dataset", self.dataset, DATASETS)
        one_of("model", self.model, MODELS)
        one_of("optimizer", self.optimizer, OPTIMIZERS)
        one_of("action", self.action, ACTION_TYPES)
        one_of("reward", self.reward, REWARD_TYPES)
        one_of("obs_transform", self.obs_transform, OBS_TRANSFORMS)
        one_of("prediction_source", self.prediction_source, PREDICTION_SOURCES)
        one_of("scale_per", self.scale_per, SCALE_PER)
        if isinstance(self.features, str):
            one_of("feature preset", self.features, FEATURE_PRESETS)
            self.features = FEATURE_PRESETS[self.features]
        self.features = tuple(self.features)
        self.scale_range = tuple(float(v) for v in self.scale_range)
        self.discrete_multipliers = tuple(float(v) for v in self.discrete_multipliers)
        self.model_kwargs = dict(self.model_kwargs)
        known = feature_table(1.0, 1.0, 2.0, 1.0)
        bad = [f for f in self.features if f not in known]
        if bad or not self.features:
            raise ValueError(f"unknown feature(s) {bad or '(empty list)'}; allowed: {list(known)}")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features repeat a name: {list(self.features)}")
        # Build the trainee on the meta device (no memory, no RNG draw) so that a typo in model_kwargs or a
        # bad depth fails here rather than at the first reset.
        with torch.device("meta"):
            spec = DATASETS[self.dataset]
            build_model(self.model, spec.channels, spec.image_size, spec.num_classes, **self.model_kwargs)
        if not self.initial_lr > 0:
            raise ValueError(f"initial_lr must be > 0, got {self.initial_lr}")
        if not 0 < self.lr_min < self.lr_max:
            raise ValueError(f"need 0 < lr_min < lr_max, got lr_min={self.lr_min}, lr_max={self.lr_max}")
        if not self.lr_min <= self.initial_lr <= self.lr_max:
            raise ValueError(
                f"initial_lr={self.initial_lr} lies outside [lr_min, lr_max]=[{self.lr_min}, {self.lr_max}]"
            )
        for name in ("steps_per_action", "episode_steps", "batch_size", "eval_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        lo, hi = self.scale_range
        if len(self.scale_range) != 2 or not 0 < lo <= hi:
            raise ValueError(f"scale_range must be [low, high] with 0 < low <= high, got {list(self.scale_range)}")
        if not self.discrete_multipliers or min(self.discrete_multipliers) <= 0:
            raise ValueError(f"discrete_multipliers must be positive, got {list(self.discrete_multipliers)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.max_loss <= 0 or self.weight_bound <= 0:
            raise ValueError("max_loss and weight_bound must be > 0")
        if self.divergence_loss is not None and not 0 < self.divergence_loss <= self.max_loss:
            raise ValueError(f"divergence_loss must be in (0, max_loss], got {self.divergence_loss}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1 or null, got {self.torch_threads}")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available; use device=cpu or device=auto")
        check_sizes(self.dataset, self.train_size, self.val_size, self.val_probe, self.test_size)
        if self.train_size is not None and self.batch_size > self.train_size:
            raise ValueError(f"batch_size={self.batch_size} exceeds train_size={self.train_size}")

    def to_dict(self) -> dict:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d


def _clip(value: float, low: float, high: float) -> float:
    # Python floats: np.clip on a scalar costs microseconds, on the env's per-step path.
    return min(max(value, low), high)


class LRControlEnv(gym.Env):
    """Gymnasium env whose episode is one training run of a trainee network (see module docstring)."""

    metadata = {"render_modes": []}

    def __init__(self, **kwargs):
        self.cfg = cfg = EnvConfig.from_kwargs(**kwargs)
        if cfg.torch_threads is not None:
            torch.set_num_threads(cfg.torch_threads)
        dev = cfg.device
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if dev == "auto" else dev)
        self.spec_data = DATASETS[cfg.dataset]
        self.div_loss = cfg.divergence_loss or 2.0 * math.log(self.spec_data.num_classes)
        table = feature_table(cfg.max_loss, cfg.lr_min, cfg.lr_max, cfg.weight_bound)
        self.feature_names: list[str] = list(cfg.features)
        self._low = np.array([table[f].low for f in self.feature_names], dtype=np.float64)
        self._high = np.array([table[f].high for f in self.feature_names], dtype=np.float64)
        if cfg.obs_transform == "symlog":
            self._low, self._high = symlog(self._low), symlog(self._high)
        self._low_list, self._high_list = self._low.tolist(), self._high.tolist()
        self.observation_space = gym.spaces.Box(
            self._low.astype(np.float32), self._high.astype(np.float32), dtype=np.float32
        )
        if cfg.action == "discrete":
            self.action_space = gym.spaces.Discrete(len(cfg.discrete_multipliers))
        else:
            self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        # Fail on missing data here, at construction, not at the first reset.
        split_seed = 0 if cfg.split_seed is None else cfg.split_seed
        self._splits = self._make_splits(split_seed)
        self._splits_seed = split_seed
        self.trainee: Trainee | None = None
        self.lr = cfg.initial_lr
        self.t = 0
        self._needs_reset = True

    # ----- public helpers used by controllers and the harness -------------------------------------------
    @property
    def steps_per_epoch(self) -> float:
        """Env steps per pass over the training split."""
        return (self._splits.train_size // self.cfg.batch_size) / self.cfg.steps_per_action

    def action_to_lr(self, action) -> float:
        cfg = self.cfg
        if cfg.action == "discrete":
            lr = self.lr * cfg.discrete_multipliers[int(action)]
        else:
            a = float(np.ravel(action)[0])
            if math.isnan(a):
                raise ValueError("action is NaN; the controller's output must be a number in [-1, 1]")
            a = _clip(a, -1.0, 1.0)
            if cfg.action == "scale":
                lo, hi = cfg.scale_range
                multiplier = lo + (a + 1.0) / 2.0 * (hi - lo)
                if cfg.scale_per == "optimizer_step":
                    multiplier **= cfg.steps_per_action
                lr = self.lr * multiplier
            else:  # log_lr: the raw rate on a log scale spanning [lr_min, lr_max]
                lo, hi = math.log10(cfg.lr_min), math.log10(cfg.lr_max)
                lr = 10 ** (lo + (a + 1.0) / 2.0 * (hi - lo))
        return _clip(lr, cfg.lr_min, cfg.lr_max)

    def step(self, action):
        return self.step_lr(self.action_to_lr(action))

    # ----- gymnasium API ---------------------------------------------------------------------------------
    def _make_splits(self, split_seed: int):
        cfg = self.cfg
        return make_splits(
            cfg.dataset,
            split_seed=split_seed,
            data_dir=cfg.data_dir,
            train_size=cfg.train_size,
            val_size=cfg.val_size,
            val_probe=cfg.val_probe,
            test_size=cfg.test_size,
            device=self.device,
            verify_checksums=cfg.verify_checksums,
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        cfg = self.cfg
        # One episode seed -> independent streams for the split, the initialization and the data order.
        init_seed, order_seed, split_seed = (int(s) for s in self.np_random.integers(0, 2**31 - 1, size=3))
        if cfg.split_seed is not None:
            split_seed = cfg.split_seed
        if split_seed != self._splits_seed:
            self._splits, self._splits_seed = self._make_splits(split_seed), split_seed
        self.trainee = Trainee(
            self._splits,
            model=cfg.model,
            model_kwargs=cfg.model_kwargs,
            optimizer=cfg.optimizer,
            lr=cfg.initial_lr,
            batch_size=cfg.batch_size,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            init_seed=init_seed,
            order_seed=order_seed,
            device=self.device,
            eval_batch_size=cfg.eval_batch_size,
        )
        self.lr, self.t, self._needs_reset = cfg.initial_lr, 0, False
        self._pred_ema = self._change_ema = None
        # Initial state: the untrained model on the first training rows and on the probe. Predictions
        # "before" the first ones are taken as uniform, so the change feature is defined from the start.
        s = self._splits
        x, y = s.train_batch(torch.arange(cfg.batch_size, device=self.device))
        train_loss, _, train_logits = self.trainee.evaluate(x, y)
        c = self.spec_data.num_classes
        self._prev_probs = torch.full(
            (c, len(x) if cfg.prediction_source == "train" else s.val_probe), 1.0 / c, device=self.device
        )
        obs, raw = self._observe(train_loss, train_logits)
        self._last_obs, self._prev_val_loss = obs, raw["val_loss"]
        return obs, self._info(raw)

    def step_lr(self, lr: float):
        """Advance one env step at learning rate `lr` (clipped to [lr_min, lr_max]).

        Baselines that set the rate themselves use this, whatever the action type."""
        if self._needs_reset or self.trainee is None:
            raise RuntimeError("step() called before reset() or after the episode ended; call reset() first")
        cfg = self.cfg
        lr = float(lr)
        if math.isnan(lr):
            raise ValueError("step_lr got lr=NaN; pass a learning rate (it is clipped to [lr_min, lr_max])")
        self.lr = _clip(lr, cfg.lr_min, cfg.lr_max)
        self.trainee.set_lr(self.lr)
        result = self.trainee.train(cfg.steps_per_action)
        self.t += 1
        obs, raw = self._observe(result.train_loss, result.last_logits)
        diverged = (
            not all(math.isfinite(v) for v in raw.values()) or max(raw["train_loss"], raw["val_loss"]) > cfg.max_loss
        )
        # The end of the training budget ends the task: the trainee's run is over. It is a terminal state, not a
        # time limit imposed from outside (`truncated` would make SB3 bootstrap gamma * V(last obs) into the last
        # reward, a value extrapolated past the end of training). Divergence is terminal too.
        budget_spent = self.t >= cfg.episode_steps
        terminated = diverged or budget_spent
        info = self._info(raw)
        info["diverged"] = diverged
        if terminated:
            self._needs_reset = True
            info.update(self._final_eval())
        if diverged:
            # The last finite state, copied: returning the array already handed out aliases two observations.
            obs = self._last_obs.copy()
            reward = self._divergence_reward()
        else:
            self._last_obs = obs
            reward = self._reward(raw["val_loss"], budget_spent, info)
        self._prev_val_loss = raw["val_loss"]
        return obs, float(reward), terminated, False, info

    # ----- internals -------------------------------------------------------------------------------------
    def _observe(self, train_loss: torch.Tensor, train_logits: torch.Tensor) -> tuple[np.ndarray, dict]:
        cfg, s, tr = self.cfg, self._splits, self.trainee
        val_loss, val_acc, val_logits = tr.evaluate(s.x_probe, s.y_probe)
        logits = train_logits if cfg.prediction_source == "train" else val_logits
        # Class-major layout: the features are variances over all elements, which the layout leaves unchanged,
        # and torch's CPU softmax over a short last dimension is about 3x slower than over the long first one.
        probs = F.softmax(logits.t(), dim=0)
        penult, last = tr.observed_params
        with torch.no_grad():
            stats = torch.stack(
                [
                    val_loss,
                    val_acc,
                    train_loss.reshape(()),
                    probs.var(unbiased=False),
                    (probs - self._prev_probs).var(unbiased=False),
                    *centred_sum_of_squares(penult),
                    last.mean(),
                    last.var(unbiased=False),
                ]
            ).tolist()  # the step's single host sync
        self._prev_probs = probs
        vl, va, tl, pvar, pcvar, pm, pss, lm, lv = stats
        pv = pss / penult.numel()
        self._pred_ema = ema(self._pred_ema, log_var(pvar), cfg.ema_decay)
        self._change_ema = ema(self._change_ema, log_var(pcvar), cfg.ema_decay)
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
            "log10_lr": math.log10(self.lr),
            "progress": self.t / cfg.episode_steps,
        }
        values = [raw[f] for f in self.feature_names]
        if cfg.obs_transform == "symlog":
            values = symlog(np.array(values)).tolist()
        # Plain floats, not numpy calls: for 9 values numpy's per-call overhead costs more than the work.
        # NaN becomes 0 and then, like +-inf, is clipped into the declared bounds.
        bounds = zip(values, self._low_list, self._high_list, strict=True)
        obs = [_clip(0.0 if v != v else v, lo, hi) for v, lo, hi in bounds]
        return np.array(obs, dtype=np.float32), raw

    def _info(self, raw: dict) -> dict:
        tr = self.trainee
        return {
            "step": self.t,
            "lr": self.lr,
            "train_loss": raw["train_loss"],
            "val_loss": raw["val_loss"],
            "val_accuracy": raw["val_accuracy"],
            "optimizer_steps": tr.optimizer_steps,
            "epoch": tr.optimizer_steps / tr.batches_per_epoch,
        }

    def _reward(self, val_loss: float, last: bool, info: dict) -> float:
        cfg = self.cfg
        if cfg.reward == "neg_val_loss":
            return -val_loss
        if cfg.reward == "paper":
            return cfg.reward_baseline - val_loss
        if cfg.reward == "log_diff":  # telescopes to log(L_reset / L_T) over an episode
            return math.log(max(self._prev_val_loss, 1e-12)) - math.log(max(val_loss, 1e-12))
        # final_only: nothing until the last step, then minus the full validation loss (the probe's if the
        # full evaluation is switched off).
        return -info.get("final_val_loss", val_loss) if last else 0.0

    def _divergence_reward(self) -> float:
        """A diverged run is scored as if its validation loss sat at `divergence_loss` for every remaining
        step, so that ending an episode early never pays (with negative per-step rewards it otherwise would)."""
        cfg = self.cfg
        if cfg.divergence_penalty is not None:
            return cfg.divergence_penalty
        remaining = cfg.episode_steps - self.t + 1
        if cfg.reward == "neg_val_loss":
            return -self.div_loss * remaining
        if cfg.reward == "paper":
            return (cfg.reward_baseline - self.div_loss) * remaining
        if cfg.reward == "log_diff":
            return math.log(max(self._prev_val_loss, 1e-12)) - math.log(self.div_loss)
        return -self.div_loss

    def _eval_split(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        loss, acc, _ = self.trainee.evaluate(x, y)
        return float(loss), float(acc)

    def _final_eval(self) -> dict:
        cfg, s = self.cfg, self._splits
        out: dict = {}
        if cfg.final_val_eval:
            out["final_val_loss"], out["final_val_accuracy"] = self._eval_split(s.x_val, s.y_val)
        if cfg.test_eval:
            out["test_loss"], out["test_accuracy"] = self._eval_split(s.x_test, s.y_test)
        return out
