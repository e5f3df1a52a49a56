"""LRControlVecEnv: N LRControl-v1 episodes in lockstep, their trainees trained as one batched model.

The vector version of `rlsched.env.lr_control.LRControlEnv` (as Gymnasium's `CartPoleVectorEnv` is of `CartPoleEnv`):
the same `EnvConfig`, the same action map (rlsched.env.actions), features (rlsched.env.observer, batched), rewards
(rlsched.env.rewards, one per row) and final evaluation, with the N trainees held by an `rlsched.env.population`
population instead of N `Trainee`s. Row i, reset with episode seed s, follows the trajectory that
`LRControlEnv.reset(seed=s)` followed by the same actions follows, to float tolerance.

It is a stable-baselines3 `VecEnv`: `step_wait` autoresets finished rows (the final observation in
`info["terminal_observation"]`), one host sync per vector step (plus one per reset or final evaluation). A row
that diverges ends its own episode; the others train on untouched.

`LRControlGymVecEnv` is the same batched env as a Gymnasium `VectorEnv` (what `gym.make_vec(ENV_ID, num_envs=N,
vectorization_mode="vector_entry_point")` returns), for Gymnasium-native code such as CleanRL-style scripts, with
Gymnasium's autoreset modes declared in its metadata: next-step (the default, as Gymnasium's own vector envs and
what its vector wrappers require) or same-step (`autoreset_mode="SameStep"`: no reset step, the finished rows'
last observation and info in `info["final_obs"]` / `info["final_info"]`).

Episode seeds: row i draws its trainees from `episode_seeds` in its own shuffled order (`SeedQueue`, as
`rlsched.env.seed_pool.SeedPool` does for one env), or, with `episode_seeds=None`, from its own seeded stream;
`seed(s)` re-seeds row i's order with s + i at the next reset, as SB3's `DummyVecEnv` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from rlsched.env.actions import make_action_map
from rlsched.env.data import DATASETS
from rlsched.env.lr_control import EnvConfig
from rlsched.env.observer import BatchObserver, Observer
from rlsched.env.population import Population, make_population, trainee_seeds
from rlsched.env.rewards import Reward, make_reward
from rlsched.env.seed_pool import SeedQueue

FINAL_KEYS = ("final_val_loss", "final_val_accuracy", "test_loss", "test_accuracy")


def _device(name: str) -> torch.device:
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


class LRControlVecEnv(VecEnv):
    """N rows of LRControl-v1 as one SB3 VecEnv (see the module docstring).

    `population`: "auto" (batched, or a loop of ordinary trainees for models with BatchNorm), "batched" or
    "loop". `step_lrs(lrs)` advances every row at the given rates (baselines that set the rate themselves).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        env: Mapping[str, Any] | EnvConfig,
        n_envs: int,
        *,
        episode_seeds: Sequence[int] | None = None,
        shuffle_seed: int = 0,
        population: str = "auto",
    ) -> None:
        self.cfg = cfg = EnvConfig.coerce(env)
        if int(n_envs) != n_envs or n_envs < 1:
            raise ValueError(f"n_envs must be an integer >= 1, got {n_envs}")
        if cfg.tasks is not None:
            # Rows of different tasks have different shapes and data; grouping them is not built yet.
            raise ValueError(
                f"the batched vector env runs one task; env.tasks={cfg.tasks['name']!r} draws a task per row and "
                "reset: train with agent.vec_env=dummy or subproc, or evaluate one task at a time "
                "(rlsched.env.tasks.task_env_kwargs)"
            )
        if cfg.torch_threads is not None:
            torch.set_num_threads(cfg.torch_threads)
        self.render_mode = None
        self.device = _device(cfg.device)
        self.div_loss = cfg.divergence_loss or 2.0 * math.log(DATASETS[cfg.dataset].num_classes)
        observer = Observer.from_config(cfg)
        self.observer = BatchObserver(observer, n_envs)
        self.feature_names = observer.feature_names
        self.action_map = make_action_map(cfg)
        self.rewards: list[Reward] = [make_reward(cfg, self.div_loss) for _ in range(n_envs)]
        self.population: Population = make_population(cfg, n_envs, self.device, population)
        self._queues = [SeedQueue(episode_seeds, shuffle_seed + i) if episode_seeds else None for i in range(n_envs)]
        self._streams = [np.random.default_rng(shuffle_seed + i) for i in range(n_envs)]
        self.episode_seeds = np.full(n_envs, -1, dtype=np.int64)
        self.t = np.zeros(n_envs, dtype=np.int64)
        self.lrs = np.full(n_envs, float(cfg.initial_lr))
        self._last_obs = np.zeros((n_envs, len(self.feature_names)), dtype=np.float32)
        self._actions: np.ndarray | None = None
        self._started = False
        self._finished = np.zeros(n_envs, dtype=bool)  # ended, not reset (only without autoreset)
        super().__init__(n_envs, observer.space, self.action_map.space)

    # ----- what controllers and the harness read (as on LRControlEnv) ----------------------------------------
    @property
    def steps_per_epoch(self) -> float:
        return self.population.batches_per_epoch / self.cfg.steps_per_action

    # ----- SB3 VecEnv API -------------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        for i, s in enumerate(self._seeds):
            if s is not None:
                self._reseed_row(i, s)
        self._seeds = [None] * self.num_envs
        rows = list(range(self.num_envs))
        obs, infos = self._start_rows(rows)
        self.reset_infos = infos
        self._started = True
        return obs

    def reset_to(self, seeds: Sequence[int]) -> tuple[np.ndarray, list[dict]]:
        """Start every row on the given episode seeds (row i on seeds[i]); returns (obs, infos)."""
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset_to needs one seed per row ({self.num_envs}), got {len(seeds)}")
        obs, infos = self._start_rows(range(self.num_envs), [int(s) for s in seeds])
        self._started = True
        return obs, infos

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() without step_async(actions)")
        actions, self._actions = self._actions, None
        return self.step_actions(actions, autoreset=True)

    def step_actions(self, actions: np.ndarray, autoreset: bool = False) -> VecEnvStepReturn:
        """`step_async` + `step_wait`, by default without autoreset (see `step_lrs`)."""
        lrs = [
            self.action_map.to_lr(lr, a, int(t)) for lr, a, t in zip(self.lrs, np.asarray(actions), self.t, strict=True)
        ]
        return self._step(np.array(lrs), autoreset=autoreset)

    def step_lrs(self, lrs: Sequence[float] | np.ndarray, autoreset: bool = False) -> VecEnvStepReturn:
        """Advance every row one env step at the learning rates `lrs` (clipped to [lr_min, lr_max]).

        Without autoreset (the harness's use), a finished row is done once: later steps still train it (the rows
        move in lockstep) but give it reward 0, `done` False and an empty info, until `reset_to` starts it again."""
        lrs = np.asarray(lrs, dtype=np.float64).reshape(-1)
        if len(lrs) != self.num_envs or np.isnan(lrs).any():
            raise ValueError(f"step_lrs needs {self.num_envs} learning rates, none NaN; got {lrs.tolist()}")
        return self._step(np.clip(lrs, self.cfg.lr_min, self.cfg.lr_max), autoreset=autoreset)

    def close(self) -> None:
        self._started = False

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    # ----- internals -----------------------------------------------------------------------------------------
    def _reseed_row(self, row: int, shuffle_seed: int) -> None:
        if self._queues[row] is not None:
            self._queues[row].reseed(shuffle_seed)
        self._streams[row] = np.random.default_rng(shuffle_seed)

    def _next_seed(self, row: int) -> int:
        queue = self._queues[row]
        return queue.next_seed() if queue is not None else int(self._streams[row].integers(0, 2**31 - 1))

    def _start_rows(self, rows: Iterable[int], seeds: Sequence[int] | None = None) -> tuple[np.ndarray, list[dict]]:
        rows = list(rows)
        pop, cfg = self.population, self.cfg
        for j, row in enumerate(rows):
            self.episode_seeds[row] = seeds[j] if seeds is not None else self._next_seed(row)
        pop.start_rows(rows, [trainee_seeds(int(self.episode_seeds[row]), cfg.split_seed) for row in rows])
        self.t[rows] = 0
        self._finished[rows] = False
        self.lrs[rows] = float(cfg.initial_lr)
        self.observer.reset_rows(rows)
        first = pop.first_batch(rows)
        penult, last = pop.observed_params()
        obs, raw = self._observe(first.loss, first.logits, pop.probe_rows(rows), (penult[rows], last[rows]), rows)
        self._last_obs[rows] = obs
        infos, steps = [], pop.steps
        for j, row in enumerate(rows):
            self.rewards[row].reset(float(raw["val_loss"][j]), int(self.episode_seeds[row]))
            infos.append(self._info(row, raw, j, steps) | {"episode_seed": int(self.episode_seeds[row])})
        return obs, infos

    def _step(self, lrs: np.ndarray, autoreset: bool) -> VecEnvStepReturn:
        if not self._started:
            raise RuntimeError("step called before reset(); call reset() first")
        cfg, pop = self.cfg, self.population
        self.lrs = lrs.astype(np.float64)
        pop.set_lrs(self.lrs)
        result = pop.train(cfg.steps_per_action)
        self.t += 1
        obs, raw = self._observe(result.train_loss, result.last_logits, pop.probe(), pop.observed_params(), None)
        finite = np.all([np.isfinite(v) for v in raw.values()], axis=0)
        diverged = ~finite | (np.maximum(raw["train_loss"], raw["val_loss"]) > cfg.max_loss)
        budget_spent = self.t >= cfg.episode_steps
        # Terminal, not truncated, for the reasons LRControlEnv.step_lr gives.
        finished = self._finished.copy()
        dones = (diverged | budget_spent) & ~finished
        finals = self._final_eval(np.nonzero(dones)[0])
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        infos: list[dict] = []
        steps = pop.steps
        for row in range(self.num_envs):
            if finished[row]:
                infos.append({})
                continue
            info = self._info(row, raw, row, steps)
            info["diverged"] = bool(diverged[row])
            info["episode_seed"] = int(self.episode_seeds[row])
            info.update(finals.get(row, {}))
            if diverged[row]:
                obs[row] = self._last_obs[row]  # the last finite state, as the single env returns
                rewards[row] = self.rewards[row].divergence(int(self.t[row]))
            else:
                rewards[row] = self.rewards[row].step(float(raw["val_loss"][row]), bool(budget_spent[row]), info)
            if dones[row]:
                info["terminal_observation"] = obs[row].copy()
                info["TimeLimit.truncated"] = False
            infos.append(info)
        obs[finished] = self._last_obs[finished]
        self._last_obs = obs.copy()
        done_rows = np.nonzero(dones)[0].tolist()
        if not autoreset:
            self._finished |= dones
        elif done_rows:
            reset_obs, reset_infos = self._start_rows(done_rows)
            obs[done_rows] = reset_obs
            for j, row in enumerate(done_rows):
                self.reset_infos[row] = reset_infos[j]
        return obs, rewards, dones, infos

    def _observe(self, train_loss, train_logits, probe, observed, rows: list[int] | None):
        """The observer's (observations, raw features) of `rows` (None: all) from their signals."""
        index = slice(None) if rows is None else rows
        return self.observer.observe(
            train_loss=train_loss,
            train_logits=train_logits,
            val_loss=probe.loss,
            val_acc=probe.accuracy,
            val_logits=probe.logits,
            observed_params=observed,
            lrs=self.lrs[index],
            t=self.t[index],
            rows=rows,
        )

    def _info(self, row: int, raw: dict[str, np.ndarray], j: int, steps: np.ndarray) -> dict[str, Any]:
        """The single env's info for row `row`, whose values are at position `j` of `raw`."""
        steps = int(steps[row])
        per_epoch = self.population.batches_per_epoch
        return {
            "task": self.cfg.task,
            "step": int(self.t[row]),
            "lr": float(self.lrs[row]),
            "train_loss": float(raw["train_loss"][j]),
            "val_loss": float(raw["val_loss"][j]),
            "val_accuracy": float(raw["val_accuracy"][j]),
            "optimizer_steps": steps,
            "epoch": steps / per_epoch,
        }

    def _final_eval(self, rows: np.ndarray) -> dict[int, dict[str, float]]:
        """The end-of-episode evaluation of LRControlEnv (full validation split and test set) for `rows`."""
        rows = rows.tolist()
        out: dict[int, dict[str, float]] = {row: {} for row in rows}
        if not rows:
            return out
        for which, flag in (("val", self.cfg.final_val_eval), ("test", self.cfg.test_eval)):
            if not flag:
                continue
            loss, acc = self.population.evaluate_split(rows, which)
            prefix = "final_val_" if which == "val" else "test_"
            for j, row in enumerate(rows):
                out[row][f"{prefix}loss"] = float(loss[j])
                out[row][f"{prefix}accuracy"] = float(acc[j])
        return out


class LRControlGymVecEnv(VectorEnv):
    """N rows of LRControl-v1 as a Gymnasium `VectorEnv`, built on `LRControlVecEnv` (see the module docstring).

    `gym.make_vec("rlsched/LRControl-v1", num_envs=N, vectorization_mode="vector_entry_point", **env_options)`
    builds it; `episode_seeds`, `shuffle_seed` and `population` are `LRControlVecEnv`'s. `autoreset_mode`
    (https://farama.org/Vector-Autoreset-Mode), declared in `metadata`:

    - `NEXT_STEP` (default): the step after a row's episode ended resets that row (its action ignored, reward 0,
      not terminated) and returns the new episode's first observation. Learners must not train on that step.
      The rows move in lockstep, so the resetting row's trainee still takes that step's training, then restarts.
    - `SAME_STEP`: a finished row's returned observation is already its new episode's first; the finished
      episode's last observation and info are in `info["final_obs"]` / `info["final_info"]`. Every transition
      is real, but Gymnasium's vector observation wrappers refuse this mode.

    Episodes end terminated, never truncated (see LRControlEnv). `reset(seed=s)` re-seeds row i's episode-seed
    stream with s + i.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int,
        *,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        episode_seeds: Sequence[int] | None = None,
        shuffle_seed: int = 0,
        population: str = "auto",
        render_mode: str | None = None,
        **env_options: Any,
    ) -> None:
        if render_mode is not None:
            raise ValueError(
                f"render_mode={render_mode!r}: the vector env does not render; render one env made with "
                "gym.make(ENV_ID, render_mode='rgb_array') instead"
            )
        modes = {m.value: m for m in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)}
        mode = modes.get(autoreset_mode.value if isinstance(autoreset_mode, AutoresetMode) else autoreset_mode)
        if mode is None:
            raise ValueError(f"autoreset_mode must be one of {list(modes)}, got {autoreset_mode!r}")
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.batched = LRControlVecEnv(
            env_options, num_envs, episode_seeds=episode_seeds, shuffle_seed=shuffle_seed, population=population
        )
        self.num_envs = self.batched.num_envs
        self.render_mode = None
        self.single_observation_space = self.batched.observation_space
        self.single_action_space = self.batched.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.cfg = self.batched.cfg
        self._ended = np.zeros(self.num_envs, dtype=bool)  # NEXT_STEP: rows to reset at the next step

    def reset(
        self, *, seed: int | Sequence[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if options:
            raise ValueError(f"reset options {sorted(options)} are not supported; LRControl takes none")
        if isinstance(seed, Sequence):
            raise ValueError("reset(seed=) takes one int (row i is seeded with seed + i) or None")
        if seed is not None:
            self.batched.seed(int(seed))
        obs = self.batched.reset()
        self._ended[:] = False
        infos: dict[str, Any] = {}
        for i, info in enumerate(self.batched.reset_infos):
            infos = self._add_info(infos, info, i)
        return obs, infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"step needs one action per row ({self.num_envs}), got {len(actions)}")
        same_step = self.autoreset_mode is AutoresetMode.SAME_STEP
        obs, rewards, dones, row_infos = self.batched.step_actions(actions, autoreset=same_step)
        infos: dict[str, Any] = {}
        if same_step:
            for i, info in enumerate(row_infos):
                if dones[i]:
                    drop = ("terminal_observation", "TimeLimit.truncated")
                    final = {k: v for k, v in info.items() if k not in drop}
                    infos = self._add_info(infos, {"final_obs": info["terminal_observation"], "final_info": final}, i)
                    info = self.batched.reset_infos[i]  # the row's info is its new episode's, as Gymnasium's own
                infos = self._add_info(infos, info, i)
            return obs, rewards.astype(np.float64), dones.copy(), np.zeros(self.num_envs, dtype=bool), infos
        # NEXT_STEP: the rows that ended last step (trained this step in lockstep, reward 0) start again now.
        restart = np.nonzero(self._ended)[0].tolist()
        if restart:
            reset_obs, reset_infos = self.batched._start_rows(restart)
            obs[restart] = reset_obs
            for j, row in enumerate(restart):
                row_infos[row] = reset_infos[j]
        for i, info in enumerate(row_infos):
            # The last observation is the returned one itself here: no terminal_observation copy.
            drop = ("terminal_observation", "TimeLimit.truncated")
            infos = self._add_info(infos, {k: v for k, v in info.items() if k not in drop}, i)
        rewards = rewards.astype(np.float64)
        rewards[restart] = 0.0  # LRControlVecEnv pays a finished row nothing already; this says so
        self._ended = dones.copy()
        return obs, rewards, dones.copy(), np.zeros(self.num_envs, dtype=bool), infos

    def close_extras(self, **kwargs: Any) -> None:
        self.batched.close()
