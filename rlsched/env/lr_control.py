"""LRControl-v1: a controller sets the learning rate of a network training on real data.

One step: the action sets the LR, the trainee takes K optimizer steps, the validation probe is evaluated,
and the env returns the observation and reward. Everything the env accepts is a field of `EnvConfig`;
every field is validated at construction, before any data is loaded or any training starts.

The env composes parts that each own one thing: `rlsched.env.trainee.Trainee` (network, optimizer, data order),
`rlsched.env.actions` (action -> learning rate), `rlsched.env.observer.Observer` (features -> observation) and
`rlsched.env.rewards`.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
import torch

from rlsched.env.actions import clip, make_action_map
from rlsched.env.config import EnvConfig
from rlsched.env.data import DATASETS, require_data
from rlsched.env.observer import Observer
from rlsched.env.options import ACTION_TYPES, PREDICTION_SOURCES, REWARD_TYPES, SCALE_PER
from rlsched.env.rewards import make_reward
from rlsched.env.tasks import load_task_set
from rlsched.env.trainee import Trainee

if TYPE_CHECKING:
    from rlsched.env.reference import ReferenceRunner

__all__ = ["ACTION_TYPES", "PREDICTION_SOURCES", "REWARD_TYPES", "SCALE_PER", "EnvConfig", "LRControlEnv"]


class LRControlEnv(gym.Env):
    """
    ## Description

    `rlsched/LRControl-v1`: one episode is one real training run of a small network (the *trainee*) on an image
    data set; at every step the controller sets the learning rate, the trainee takes K optimizer steps
    (`steps_per_action`), and the env reports how training goes. The task follows Xu et al., "Learning an
    Adaptive Learning Rate Schedule" (2019), with the MDP fixes listed under Version History.

    The env composes parts that each own one thing: the data splits and the `Trainee` (the network, its optimizer
    and data order), the action map (rlsched.env.actions), the `Observer` (rlsched.env.observer) and the reward
    (rlsched.env.rewards).

    ## Action Space

    Per `action` (default `"scale"`):

    - `"scale"`: `Box(-1, 1, (1,), float32)`. a in [-1, 1] maps linearly to a multiplier m in `scale_range`
      (default [0.965, 1.035]); the LR becomes lr * m**K with `scale_per="optimizer_step"` (the multiplier acts
      at each of the K optimizer steps, the paper's per-step range), lr * m with `scale_per="env_step"`.
    - `"discrete"`: `Discrete(len(discrete_multipliers))`; action i multiplies the LR by `discrete_multipliers[i]`
      (default 1/1.05, 1, 1.05).
    - `"log_lr"`: `Box(-1, 1, (1,), float32)`; a sets the LR itself, log-uniformly between `lr_min` and `lr_max`.
    - `"prior_offset"`: `Box(-1, 1, (1,), float32)`; the LR is the prior schedule's rate times 10**a: warm-up +
      cosine at `initial_lr` over `episode_steps` (10% linear warm-up from 0.1x, cosine to 0; untuned), so a = 0
      follows the prior and the controller learns corrections (rlsched.env.actions.prior_schedule).

    The LR is always clipped to [`lr_min`, `lr_max`] (default [1e-5, 0.1]); a NaN action is refused.

    ## Observation Space

    `Box(low, high, (n,), float32)` with one entry per name in `features` (default: the 10 below; `"paper"`: the
    first 9, the authors' state; `val_accuracy` is optional). Every value is clipped into its declared bounds
    (`max_loss` M = 100, `weight_bound` W = 100, eps = 1e-10); `obs_transform="symlog"` applies sign(x) log(1+|x|)
    to values and bounds.

    | Num | Feature                 | Meaning                                          | Bounds                    |
    |-----|-------------------------|--------------------------------------------------|---------------------------|
    | 0   | val_loss                | cross-entropy on the fixed validation probe      | [0, M]                    |
    | 1   | pred_log_var_ema        | EMA of log variance of softmax predictions       | [log eps, 0]              |
    | 2   | pred_change_log_var_ema | EMA of log variance of the predictions' change   | [log eps, 0]              |
    | 3   | train_loss              | mean training loss over the K optimizer steps    | [0, M]                    |
    | 4   | penult_weight_mean      | mean of the penultimate observed layer's weights | [-W, W]                   |
    | 5   | penult_weight_var       | variance of the penultimate layer's weights      | [0, W²]                   |
    | 6   | last_weight_mean        | mean of the last layer's weights                 | [-W, W]                   |
    | 7   | last_weight_var         | variance of the last layer's weights             | [0, W²]                   |
    | 8   | log10_lr                | log10 of the learning rate in use                | log10 of [lr_min, lr_max] |
    | 9   | progress                | fraction of the episode taken, t / episode_steps | [0, 1]                    |
    | -   | val_accuracy (optional) | accuracy on the validation probe                 | [0, 1]                    |

    `features="invariant"`: the same 10, each independent of the task's scale (for task sets): `val_loss_rel` and
    `train_loss_rel` (loss / ln C), the four weight statistics scaled by fan-in (`*_mean_scaled` = mean x sqrt
    fan-in, `*_var_scaled` = variance x fan-in), `log10_lr_rel` (log10 of LR / initial_lr), the two prediction
    EMAs and `progress` as above (rlsched.env.features.INVARIANT_FEATURES).

    Predictions come from the training batch (`prediction_source="train"`, the paper's) or from the probe
    (`"validation"`). With `controlled_params`, the observed layers are the controlled ones' last two.

    ## Rewards

    Per `reward` (L_t: the probe's validation loss after step t):

    - `"neg_val_loss"` (default): -L_t every step.
    - `"paper"`: `reward_baseline` - L_t every step (the authors', baseline 2).
    - `"final_only"`: 0 until the last step, then minus the full validation loss.
    - `"log_diff"`: log L_{t-1} - log L_t (telescopes to log(L_0 / L_T)).
    - `"paired_log"`: log L_ref,t - log L_t against a baseline (`reward_reference`) run on the same trainee.

    A diverged step pays as if the run stayed at `divergence_loss` (default 2 ln(classes)) for every step it will
    not take, or `divergence_penalty` when set.

    ## Starting State

    `reset(seed=s)` draws the data split (unless `split_seed` fixes it), the trainee's initialization and its data
    order from s; the LR starts at `initial_lr`. The first observation is the untrained network on the first
    training batch and on the probe. A reward that needs the seed (paired_log) gets s; after `reset()` without a
    seed it gets one drawn from the env's `np_random`, which then seeds the episode (`episode_seed` holds it).

    With `tasks` (a task set, rlsched.env.tasks), `reset(seed=s)` first picks task `names[s % n]`, whose config
    (data, model, optimizer, batch, horizon, K, initial LR) the episode then runs; `info["task"]` names it (for a
    single-task env, the config's `task` label or None). A task-set episode with seed s is the single-task
    episode of its task with seed s.

    ## Episode End

    1. Termination: the training budget is spent (`episode_steps` env steps): the trainee's run is over, a
       terminal state, not a time limit, so `truncated` is always False and no TimeLimit wrapper is added.
    2. Termination: divergence, a non-finite loss or feature, or a training or probe loss above `max_loss`;
       the observation is then the last finite one and `info["diverged"]` is True.

    At the end, `info` holds `final_val_loss`/`final_val_accuracy` (the full validation split, `final_val_eval`)
    and `test_loss`/`test_accuracy` (`test_eval`); neither enters the observation or a reward (final_only aside).

    ## Arguments

    ```python
    import gymnasium as gym
    import rlsched  # registers rlsched/LRControl-v1
    env = gym.make("rlsched/LRControl-v1", model="mlp", episode_steps=20, render_mode="rgb_array")
    ```

    Every keyword is a field of `rlsched.env.config.EnvConfig` (data set and sizes, model, optimizer, K, episode
    length, action, features, reward, device, precision; docs/env_options.md lists them by part), validated at
    construction; an unknown one is a `ValueError` naming the allowed ones. `config=` takes an `EnvConfig` already
    built instead (`EnvConfig.from_kwargs(...)`), used as it is. `reference_runner` runs paired_log's
    reference baseline (default: the installed one, see rlsched.env.reference). `render_mode`: None or
    `"rgb_array"` (an image of the episode so far: the learning rate and the probe's validation loss against the
    step, drawn with matplotlib's Agg backend).

    ## Version History

    - v1: the current MDP: the budget's end is terminal (not truncated), the `progress` feature is in the
      default observation, and the `scale` range applies per optimizer step (`scale_per="optimizer_step"`).
      `render_mode="rgb_array"` and the Gymnasium vector entry point came with it.
      Added in v1 without changing its defaults: task sets (`tasks`, `info["task"]`), `features="invariant"`, the
      `prior_offset` action, the optimizers `schedulefree_adamw`, `prodigy`, `dadapt_adam`.
    - v0: the first version: the budget's end was a truncation (SB3 bootstrapped past the end of training),
      the observation was the paper's 9 features, the `scale` range applied once per env step. Retired:
      `gym.make("rlsched/LRControl-v0")` refuses and points to v1.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        render_mode: str | None = None,
        reference_runner: ReferenceRunner | None = None,
        config: EnvConfig | None = None,
        **kwargs,
    ):
        if config is not None and kwargs:
            raise ValueError(f"give a built config or keywords, not both (config=... and {sorted(kwargs)})")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"unknown render_mode {render_mode!r}; allowed: None or one of {self.metadata['render_modes']}"
            )
        self.render_mode = render_mode
        # A built config is used as it is (a shallow copy, never validated again); keywords are validated here.
        self.cfg = cfg = copy.copy(config) if config is not None else EnvConfig.from_kwargs(**kwargs)
        self._reference_runner = reference_runner
        if cfg.torch_threads is not None:
            torch.set_num_threads(cfg.torch_threads)
        dev = cfg.device
        self.device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if dev == "auto" else dev)
        # A task set: one single-task config per task, whose parts are swapped in at each reset.
        self.task_set = load_task_set(cfg.tasks) if cfg.tasks is not None else None
        self._task_cfgs = {n: cfg.task_config(n) for n in self.task_set.names} if self.task_set else {}
        self._task_parts: dict[str | None, tuple] = {}
        self._use_task(self.task_set.names[0] if self.task_set else None)
        self.observation_space = self.observer.space
        self.action_space = self.action_map.space
        for name in self._task_cfgs:
            self._use_task(name)
            if self.observer.space != self.observation_space or self.action_map.space != self.action_space:
                raise ValueError(f"task {name!r} changes the observation or action space of its task set")
        if self.task_set:
            self._use_task(self.task_set.names[0])
        # Fail on missing data here, at construction, not at the first reset.
        split_seed = 0 if cfg.split_seed is None else cfg.split_seed
        for task_cfg in self._task_cfgs.values():
            require_data(task_cfg.dataset, task_cfg.data_dir, task_cfg.verify_checksums)
        self._splits = self._make_splits(split_seed)
        self._splits_key = self._split_key(split_seed)
        self.trainee: Trainee | None = None
        self.episode_seed: int | None = None
        self.lr = self.cfg.initial_lr
        self.t = 0
        self._needs_reset = True
        self._history: list[tuple[int, float, float]] = []  # (step, lr, probe val loss) for render()

    def _use_task(self, name: str | None) -> None:
        """Make task `name` (None: the env's only task) the current one: its config, observer, action map and
        reward. Its parts are built once and kept."""
        if name not in self._task_parts:
            cfg = self.cfg if name is None else self._task_cfgs[name]
            spec = DATASETS[cfg.dataset]
            div_loss = cfg.divergence_loss or 2.0 * math.log(spec.num_classes)
            observer = Observer.from_config(cfg)
            reward = make_reward(cfg, div_loss, self._reference_runner)
            self._task_parts[name] = (cfg, spec, div_loss, observer, make_action_map(cfg), reward)
        cfg, self.spec_data, self.div_loss, self.observer, self.action_map, self.reward_fn = self._task_parts[name]
        if name is not None:
            self.cfg = cfg
        self.task = name if name is not None else self.cfg.task
        self.feature_names: list[str] = self.observer.feature_names

    # ----- public helpers used by controllers and the harness -------------------------------------------
    @property
    def steps_per_epoch(self) -> float:
        """Env steps per pass over the training split."""
        return (self._splits.train_size // self.cfg.batch_size) / self.cfg.steps_per_action

    def action_to_lr(self, action) -> float:
        return self.action_map.to_lr(self.lr, action, self.t)

    def step(self, action):
        return self.step_lr(self.action_to_lr(action))

    # ----- gymnasium API ---------------------------------------------------------------------------------
    def _make_splits(self, split_seed: int):
        return self.cfg.make_splits(split_seed, self.device)

    def _split_key(self, split_seed: int) -> tuple:
        c = self.cfg
        return (c.dataset, c.train_size, c.val_size, c.val_probe, c.test_size, split_seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is None and self.reward_fn.needs_episode_seed:
            super().reset()  # creates np_random on a fresh env; leaves a seeded one as it is
            seed = int(self.np_random.integers(0, 2**31 - 1))
        super().reset(seed=seed)
        self.episode_seed = seed
        if self.task_set is not None:
            if seed is None:  # the task follows the seed; without one, draw both from the env's stream
                seed = self.episode_seed = int(self.np_random.integers(0, 2**31 - 1))
                super().reset(seed=seed)
            self._use_task(self.task_set.task_for_seed(seed))
        cfg = self.cfg
        # One episode seed -> independent streams for the split, the initialization and the data order.
        init_seed, order_seed, split_seed = (int(s) for s in self.np_random.integers(0, 2**31 - 1, size=3))
        if cfg.split_seed is not None:
            split_seed = cfg.split_seed
        if self._split_key(split_seed) != self._splits_key:
            self._splits, self._splits_key = self._make_splits(split_seed), self._split_key(split_seed)
        self.trainee = Trainee.from_config(
            cfg, self._splits, init_seed=init_seed, order_seed=order_seed, device=self.device
        )
        self.lr, self.t, self._needs_reset = cfg.initial_lr, 0, False
        self.observer.reset()
        # Initial state: the untrained model on the first training rows and on the probe.
        x, y = self._splits.train_batch(torch.arange(cfg.batch_size, device=self.device))
        train_loss, _, train_logits = self.trainee.evaluate(x, y)
        obs, raw = self._observe(train_loss, train_logits)
        self._last_obs = obs
        self.reward_fn.reset(raw["val_loss"], seed)
        info = self._info(raw)
        self._history = [(0, info["lr"], info["val_loss"])]
        return obs, info

    def step_lr(self, lr: float):
        """Advance one env step at learning rate `lr` (clipped to [lr_min, lr_max]).

        Baselines that set the rate themselves use this, whatever the action type."""
        if self._needs_reset or self.trainee is None:
            raise RuntimeError("step() called before reset() or after the episode ended; call reset() first")
        cfg = self.cfg
        lr = float(lr)
        if math.isnan(lr):
            raise ValueError("step_lr got lr=NaN; pass a learning rate (it is clipped to [lr_min, lr_max])")
        self.lr = clip(lr, cfg.lr_min, cfg.lr_max)
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
        self._history.append((self.t, info["lr"], info["val_loss"]))
        if terminated:
            self._needs_reset = True
            info.update(self._final_eval())
        if diverged:
            # The last finite state, copied: returning the array already handed out aliases two observations.
            obs = self._last_obs.copy()
            reward = self.reward_fn.divergence(self.t)
        else:
            self._last_obs = obs
            reward = self.reward_fn.step(raw["val_loss"], budget_spent, info)
        return obs, float(reward), terminated, False, info

    def render(self) -> np.ndarray | None:
        """With render_mode="rgb_array": an (H, W, 3) uint8 image of the episode so far, the LR and the probe's
        validation loss against the step; None without a render mode (as Gymnasium's own envs do)."""
        if self.render_mode is None:
            gym.logger.warn("render() called without a render_mode; make the env with render_mode='rgb_array'")
            return None
        from rlsched.env.render import episode_image  # lazily: matplotlib only for those who render

        return episode_image(self._history, self.cfg.lr_min, self.cfg.lr_max, self.cfg.episode_steps)

    # ----- internals -------------------------------------------------------------------------------------
    def _observe(self, train_loss: torch.Tensor, train_logits: torch.Tensor) -> tuple[np.ndarray, dict]:
        s, tr = self._splits, self.trainee
        val_loss, val_acc, val_logits = tr.evaluate(s.x_probe, s.y_probe)
        return self.observer.observe(
            train_loss=train_loss,
            train_logits=train_logits,
            val_loss=val_loss,
            val_acc=val_acc,
            val_logits=val_logits,
            observed_params=tr.observed_params,
            lr=self.lr,
            t=self.t,
        )

    def _info(self, raw: dict) -> dict:
        tr = self.trainee
        return {
            "task": self.task,
            "step": self.t,
            "lr": self.lr,
            "train_loss": raw["train_loss"],
            "val_loss": raw["val_loss"],
            "val_accuracy": raw["val_accuracy"],
            "optimizer_steps": tr.optimizer_steps,
            "epoch": tr.optimizer_steps / tr.batches_per_epoch,
        }

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
