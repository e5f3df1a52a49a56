"""PPO training of the learning-rate controller (stable-baselines3; RecurrentPPO from sb3-contrib).

A run has three phases, as in rl-baselines3-zoo's ExperimentManager: `TrainingRun.setup` (the folder, the
envs, the model, the callbacks), `TrainingRun.learn` (PPO, saving a checkpoint on Ctrl-C and SIGTERM alike)
and `TrainingRun.finalize` (the artifact from the best or the final policy). `train_controller` runs them.

Everything that can be wrong with a request fails when a `TrainingRun` is made, before anything is written:
the agent and env configs, and the run folder's identity (rlsched/train/checkpoints.py: a folder holding a run of
another env config, agent config or seed is refused, naming the differing keys).

Checkpoints are written at rollout boundaries, after the PPO update of that rollout, every
`checkpoint_every` timesteps (rounded up to whole rollouts); a restarted run with the same `out_dir` and
config resumes from the newest one, so an interruption loses at most one checkpoint interval. A resumed run
appends to `sb3_log/progress.csv` and `eval/selection.csv` and keeps the best checkpoint so far.
"""

from __future__ import annotations

import copy
import inspect
import json
import math
import os
import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor, VecNormalize

from rlsched.control.artifact import ALGORITHMS, algorithm_class, save_artifact
from rlsched.env.lr_control import EnvConfig, LRControlEnv
from rlsched.env.reference import installed_runner
from rlsched.env.seed_pool import SeedPool
from rlsched.env.seeds import seed_block
from rlsched.env.vector import LRControlVecEnv
from rlsched.identity import flatten
from rlsched.io import FolderBusyError, FolderLock, atomic_write_json, ensure_writable
from rlsched.schema import AgentConfig, NormalizeConfig
from rlsched.tracking import Tracker
from rlsched.train.callbacks import AppendingCSVOutput, ProgressLines, RolloutCheckpoint, TraineeMetrics, WandbWriter
from rlsched.train.checkpoints import (
    RUN_CONFIG,
    RunConfigError,
    check_run_folder,
    checkpoint_timesteps,
    checkpoints_newest_first,
    latest_checkpoint,
    save_checkpoint,
    write_run_config,
)
from rlsched.train.selection import CheckpointSelection

POLICIES = {"ppo": ("MlpPolicy",), "recurrent_ppo": ("MlpLstmPolicy",)}
VEC_ENVS = ("dummy", "subproc", "batched")
# Agent settings that change how a run is resumed, watched or executed, not the policy it trains.
AGENT_RUN_ONLY_KEYS = ("resume", "progress", "progress_every_s", "checkpoint_every", "device", "vec_env")
# Recorded in run_config.json but free to change: a larger budget trains a finished run on.
FREE_KEYS = ("agent.total_timesteps",)


ARTIFACT_FROM = ("best", "final")
# PPO keyword arguments that TrainingRun itself passes: a config may not set them.
_SET_BY_RUN = ("self", "policy", "env", "seed", "device", "verbose", "_init_setup_model")
# (check, what it must be) per PPO keyword argument with a range; other keywords are passed as given.
_PPO_VALUES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "learning_rate": (lambda v: _real(v) and v > 0, "a number > 0"),
    "n_steps": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "batch_size": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "n_epochs": (lambda v: _integer(v) and v >= 1, "an integer >= 1"),
    "gamma": (lambda v: _real(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "gae_lambda": (lambda v: _real(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "clip_range": (lambda v: _real(v) and v > 0, "a number > 0"),
    "clip_range_vf": (lambda v: v is None or (_real(v) and v > 0), "null or a number > 0"),
    "ent_coef": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "vf_coef": (lambda v: _real(v) and v >= 0, "a number >= 0"),
    "max_grad_norm": (lambda v: _real(v) and v > 0, "a number > 0"),
    "target_kl": (lambda v: v is None or (_real(v) and v > 0), "null or a number > 0"),
    "policy_kwargs": (lambda v: v is None or isinstance(v, Mapping), "a mapping of policy keyword arguments"),
}


def _real(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _keywords(cls: type) -> list[str]:
    return [p for p in inspect.signature(cls.__init__).parameters if p not in _SET_BY_RUN]


def check_seed(name: str, value: Any) -> int:
    """A seed as an int in [0, 2**32) (numpy's range), or a ValueError naming the key."""
    if not _integer(value) or not 0 <= value < 2**32:
        raise ValueError(f"{name} must be an integer in [0, 2**32), got {value!r}")
    return int(value)


def agent_defaults() -> dict[str, Any]:
    return asdict(AgentConfig())


def with_defaults(agent: Mapping[str, Any]) -> dict[str, Any]:
    """`agent` with AgentConfig's defaults for the keys it lacks (normalize merged key by key)."""
    base = agent_defaults()
    return {**base, **dict(agent), "normalize": {**base["normalize"], **dict(agent.get("normalize") or {})}}


def agent_config(agent: Mapping[str, Any]) -> AgentConfig:
    """The typed agent config: `agent` validated (`validate_agent_config`), AgentConfig's defaults for what it lacks."""
    validate_agent_config(agent)
    cfg = with_defaults(agent)
    return AgentConfig(**{**cfg, "normalize": NormalizeConfig(**cfg["normalize"]), "ppo": dict(cfg["ppo"] or {})})


def validate_agent_config(agent: Mapping[str, Any]) -> None:
    """Refuse a bad agent config, naming the key: unknown keys (also under normalize, ppo and ppo.policy_kwargs,
    checked against the SB3 signatures), unknown algo/policy/vec_env/artifact_from, and out-of-range values."""
    known = {f.name for f in fields(AgentConfig)}
    unknown = sorted(set(agent) - known)
    if unknown:
        raise ValueError(f"unknown agent key(s) {unknown}; known: {sorted(known)}")
    cfg = with_defaults(agent)
    algo = cfg["algo"]
    if algo not in ALGORITHMS:
        raise ValueError(f"unknown agent algo {algo!r}; allowed: {list(ALGORITHMS)}")
    if cfg["policy"] not in POLICIES[algo]:
        raise ValueError(f"unknown policy {cfg['policy']!r} for {algo}; allowed: {list(POLICIES[algo])}")
    if cfg["vec_env"] not in VEC_ENVS:
        raise ValueError(f"unknown vec_env {cfg['vec_env']!r}; allowed: {list(VEC_ENVS)}")
    if cfg["artifact_from"] not in ARTIFACT_FROM:
        raise ValueError(f"unknown agent.artifact_from {cfg['artifact_from']!r}; allowed: {list(ARTIFACT_FROM)}")
    for key in ("n_envs", "total_timesteps", "checkpoint_every", "train_seed_pool", "eval_episodes"):
        if not _integer(cfg[key]) or cfg[key] < 1:
            raise ValueError(f"agent.{key} must be an integer >= 1, got {cfg[key]!r}")
    if not _integer(cfg["eval_every"]) or cfg["eval_every"] < 0:
        raise ValueError(f"agent.eval_every must be an integer >= 0 (0: no selection), got {cfg['eval_every']!r}")
    for key in ("train_seeds_start", "eval_seeds_start"):
        if not _integer(cfg[key]) or cfg[key] < 0:
            raise ValueError(f"agent.{key} must be an integer >= 0, got {cfg[key]!r}")
    for key in ("resume", "progress"):
        if not isinstance(cfg[key], bool):
            raise ValueError(f"agent.{key} must be true or false, got {cfg[key]!r}")
    if not _real(cfg["progress_every_s"]) or cfg["progress_every_s"] < 0:
        raise ValueError(f"agent.progress_every_s must be >= 0 seconds, got {cfg['progress_every_s']!r}")
    norm_unknown = sorted(set(cfg["normalize"]) - {"obs", "reward", "clip_obs"})
    if norm_unknown:
        raise ValueError(f"unknown agent.normalize key(s) {norm_unknown}; known: ['clip_obs', 'obs', 'reward']")
    if not _real(cfg["normalize"]["clip_obs"]) or cfg["normalize"]["clip_obs"] <= 0:
        raise ValueError(f"agent.normalize.clip_obs must be a number > 0, got {cfg['normalize']['clip_obs']!r}")
    _validate_ppo(cfg)


def _validate_ppo(cfg: Mapping[str, Any]) -> None:
    cls = algorithm_class(cfg["algo"])
    ppo = dict(cfg.get("ppo") or {})
    allowed = _keywords(cls)
    unknown = sorted(set(ppo) - set(allowed))
    if unknown:
        raise ValueError(f"unknown agent.ppo key(s) {unknown} for {cls.__name__}; allowed: {allowed}")
    for key, value in ppo.items():
        if key in _PPO_VALUES and not _PPO_VALUES[key][0](value):
            raise ValueError(f"agent.ppo.{key} must be {_PPO_VALUES[key][1]}, got {value!r}")
    policy_allowed = [k for k in _keywords(cls.policy_aliases[cfg["policy"]]) if k not in _POLICY_SET_BY_ALGO]
    policy_unknown = sorted(set(ppo.get("policy_kwargs") or {}) - set(policy_allowed))
    if policy_unknown:
        raise ValueError(
            f"unknown agent.ppo.policy_kwargs key(s) {policy_unknown} for {cfg['policy']}; allowed: {policy_allowed}"
        )
    rollout = ppo_setting(cfg, "n_steps") * int(cfg["n_envs"])
    if ppo_setting(cfg, "batch_size") > rollout:
        raise ValueError(f"agent.ppo.batch_size={ppo_setting(cfg, 'batch_size')} exceeds n_steps*n_envs={rollout}")


# Policy arguments PPO itself passes (the spaces, the LR schedule, gSDE).
_POLICY_SET_BY_ALGO = ("observation_space", "action_space", "lr_schedule", "use_sde")


def ppo_setting(agent: Mapping[str, Any], key: str) -> Any:
    """agent.ppo[key], else the PPO class's own default (its signature's): never a third default of ours."""
    ppo = agent.get("ppo") or {}
    if key in ppo:
        return ppo[key]
    return inspect.signature(algorithm_class(agent.get("algo", "ppo")).__init__).parameters[key].default


def training_seeds(agent: Mapping[str, Any]) -> list[int]:
    """PPO's training trainees: a fixed pool from the training seed set (shared by every PPO seed)."""
    cfg = with_defaults(agent)
    return seed_block("training", int(cfg["train_seeds_start"]), int(cfg["train_seed_pool"]))


def selection_seeds(agent: Mapping[str, Any]) -> list[int]:
    """The fixed trainees on which every checkpoint is scored (never used for training or evaluation)."""
    cfg = with_defaults(agent)
    return seed_block("selection", int(cfg["eval_seeds_start"]), int(cfg["eval_episodes"]))


def make_vec_env(
    env: Mapping[str, Any] | EnvConfig, n_envs: int, vec_env: str, seed: int, episode_seeds: list[int]
) -> VecEnv:
    """`n_envs` envs whose episodes draw trainees from `episode_seeds`; `seed` only shuffles the draws.

    `vec_env`: "dummy" (envs stepped in turn), "subproc" (one process each) or "batched" (one LRControlVecEnv
    whose trainees train as one batched model: the same episodes to float tolerance, far faster on a GPU)."""
    if vec_env == "batched":
        venv: VecEnv = VecMonitor(LRControlVecEnv(EnvConfig.coerce(env), n_envs, episode_seeds=episode_seeds))
        venv.seed(seed)
        return venv
    config = EnvConfig.coerce(env)
    if vec_env == "subproc" and config.torch_threads is None:
        # One process per env: split the cores instead of letting each grab all of them.
        config = copy.copy(config)
        config.torch_threads = max(1, (os.cpu_count() or 1) // n_envs)

    runner = installed_runner()  # handed to each env: a subprocess has not imported the module installing it

    def factory(rank: int):
        def _make():
            env = LRControlEnv(reference_runner=runner, config=config)
            env = Monitor(SeedPool(env, episode_seeds, shuffle_seed=seed + rank))
            env.reset(seed=seed + rank)
            return env

        return _make

    fns = [factory(i) for i in range(n_envs)]
    venv = SubprocVecEnv(fns, start_method="forkserver") if vec_env == "subproc" else DummyVecEnv(fns)
    venv.seed(seed)
    return venv


def run_identity(
    env: EnvConfig, agent: Mapping[str, Any], seed: int, selection_env: EnvConfig | None = None
) -> dict[str, Any]:
    """What a training run is: everything that changes the controller it produces (run_config.json)."""
    identity: dict[str, Any] = {
        # What the env computes, the device left out too: a run may resume on another machine.
        "env": env.identity(device="drop"),
        "agent": {k: v for k, v in agent.items() if k not in AGENT_RUN_ONLY_KEYS},
        "seed": int(seed),
    }
    if selection_env is not None:
        identity["selection_env"] = selection_env.identity(device="drop")
    # JSON-normal form (tuples -> lists), so what is compared is exactly what is stored.
    return json.loads(json.dumps(identity, default=str))


def identity_defaults() -> dict[str, Any]:
    """Flattened defaults of the env parts of a run identity: stand-ins for options a stored run lacks."""
    env = run_identity(EnvConfig.from_kwargs(), {}, 0)["env"]
    return flatten({"env": env, "selection_env": env})


class Terminated(KeyboardInterrupt):
    """SIGTERM (SLURM, submitit, `timeout`) during training: handled exactly like Ctrl-C."""


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` (a KeyboardInterrupt) once; later ones are ignored so that
    the save-on-interrupt path can finish. The previous handler is restored on exit."""
    if threading.current_thread() is not threading.main_thread():  # handlers can only be set from there
        yield
        return
    fired = False

    def handler(signum: int, frame: Any) -> None:
        nonlocal fired
        if fired:
            print("SIGTERM again: still saving the checkpoint", flush=True)
            return
        fired = True
        raise Terminated(f"signal {signum} (SIGTERM) during training")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _whole_rollouts(steps: int, rollout: int) -> int:
    return -(-int(steps) // rollout) * rollout


class TrainingRun:
    """One controller training run in `out_dir`, in three phases: setup, learn, finalize.

    Making one checks the whole request (agent config, env config, the folder's identity) and writes nothing.
    """

    def __init__(
        self,
        env: Mapping[str, Any] | EnvConfig,
        agent: Mapping[str, Any],
        out_dir: str | Path,
        *,
        seed: int = 0,
        eval_env: Mapping[str, Any] | EnvConfig | None = None,
        extra_callbacks: list[BaseCallback] | None = None,
        progress_bar: bool = False,
    ):
        self.cfg = agent_config(agent)  # `agent` as given names the run (run_config.json); `cfg` drives it
        check_seed("seed", seed)
        self.env_cfg = EnvConfig.coerce(env)  # fail on a bad env config before any process starts
        self.eval_cfg = EnvConfig.coerce(eval_env) if eval_env is not None else None
        self.agent, self.seed, self.out = dict(agent), int(seed), Path(out_dir)
        self.extra_callbacks, self.progress_bar = list(extra_callbacks or []), progress_bar
        self.algo, self.n_envs = self.cfg.algo, self.cfg.n_envs
        self.ppo_kwargs = dict(self.cfg.ppo)
        self.rollout = int(ppo_setting(self.agent, "n_steps")) * self.n_envs
        self.total = self.cfg.total_timesteps
        self.resume = self.cfg.resume
        self.identity = run_identity(self.env_cfg, self.agent, self.seed, self.eval_cfg)
        self.folder_status = check_run_folder(
            self.out,
            self.identity,
            resume=self.resume,
            budget=_whole_rollouts(self.total, self.rollout),
            ignore=FREE_KEYS,
            defaults=identity_defaults(),
        )
        self.ckpt_dir, self.artifact_dir = self.out / "checkpoints", self.out / "controller"
        # One training process per folder: a second one would race the first's checkpoints and logs.
        self.lock = FolderLock(self.out, name=".train.lock", what="a training run")
        if self.lock.is_held():
            raise FolderBusyError(
                f"{self.out} is being trained by {self.lock.describe_holder()}; wait for that run to finish (a "
                "later run with the same config resumes it), or choose another out_dir=..."
            )
        self.tracker = Tracker(backend="none")
        self.model: Any = None
        self.venv: VecEnv | None = None
        self.checkpointer: RolloutCheckpoint | None = None
        self.selection: CheckpointSelection | None = None
        self.callbacks: list[BaseCallback] = []
        self.start_steps, self.seconds = 0, 0.0

    # ----- phase 1 ----------------------------------------------------------------------------------------
    def setup(self, tracker: Tracker | None = None) -> bool:
        """Claim the folder, build envs, model, logger and callbacks. False: the run has already finished."""
        self.tracker = tracker or self.tracker
        ensure_writable(self.out)
        self.lock.acquire()  # held until finalize() (or run() ends, however it ends)
        self.ckpt_dir.mkdir(exist_ok=True)
        write_run_config(
            self.out,
            self.identity,
            replace=self.folder_status in ("same", "stale"),
            ignore=FREE_KEYS,
            defaults=identity_defaults(),
        )
        resume_from = latest_checkpoint(self.ckpt_dir) if self.resume else None
        if (
            resume_from is not None
            and checkpoint_timesteps(resume_from) >= self.total
            and (self.artifact_dir / "meta.json").is_file()
        ):
            # A finished run: re-saving the artifact would change its bytes, and with them the identity under
            # which the harness recognises the benchmark runs it already has.
            self.lock.release()
            print(
                f"training already finished ({checkpoint_timesteps(resume_from)} timesteps, same config as "
                f"{self.out / RUN_CONFIG}); using {self.artifact_dir}"
            )
            return False
        self.model, self.venv = self._load_or_create_model(resume_from)
        self.model.set_logger(
            Logger(
                str(self.out / "sb3_log"),
                [AppendingCSVOutput(self.out / "sb3_log" / "progress.csv"), WandbWriter(self.tracker)],
            )
        )
        self.callbacks = self._make_callbacks()
        return True

    def _load_or_create_model(self, resume_from: Path | None) -> tuple[Any, VecEnv]:
        venv = make_vec_env(self.env_cfg, self.n_envs, self.cfg.vec_env, self.seed, training_seeds(self.agent))
        cls, device = algorithm_class(self.algo), self.cfg.device
        if resume_from is not None:
            model, venv, resume_from = self._load_newest_readable(cls, venv, device)
            steps = int(model.num_timesteps)
            print(
                f"resume: from {resume_from} at {steps:,} of {self.total:,} timesteps "
                "(sb3_log/progress.csv and eval/selection.csv are appended to; best/ keeps the best so far)"
            )
            self.tracker.log({"controller/resumed_from_timesteps": steps}, step=steps)
            return model, venv
        norm = self.cfg.normalize
        venv = VecNormalize(
            venv,
            norm_obs=norm.obs,
            norm_reward=norm.reward,
            clip_obs=norm.clip_obs,
            gamma=float(ppo_setting(self.agent, "gamma")),
        )
        model = cls(self.cfg.policy, venv, seed=self.seed, device=device, verbose=0, **self.ppo_kwargs)
        return model, venv

    def _load_newest_readable(self, cls: Any, venv: VecEnv, device: str) -> tuple[Any, VecNormalize, Path]:
        """The newest checkpoint that loads; an unreadable one (say, truncated by a full disk) is skipped with a
        warning naming it, so one bad file costs one checkpoint interval, not the run."""
        bad = []
        for ckpt in checkpoints_newest_first(self.ckpt_dir):
            try:
                norm = VecNormalize.load(str(ckpt / "vecnormalize.pkl"), venv)
                norm.training = True
                model = cls.load(ckpt / "model.zip", env=norm, device=device)
            except Exception as err:  # SB3 and pickle raise many kinds for a damaged file; all mean "unreadable"
                bad.append(str(ckpt))
                warnings.warn(
                    f"resume: checkpoint {ckpt} is unreadable ({type(err).__name__}: {err}); trying the one before",
                    stacklevel=2,
                )
                continue
            return model, norm, ckpt
        raise RunConfigError(
            f"resume: no readable checkpoint in {self.ckpt_dir} (tried {bad}); delete {self.ckpt_dir} to train "
            "this run from scratch, or choose another out_dir=..."
        )

    def _make_callbacks(self) -> list[BaseCallback]:
        self.checkpointer = RolloutCheckpoint(self.ckpt_dir, _whole_rollouts(self.cfg.checkpoint_every, self.rollout))
        callbacks: list[BaseCallback] = [self.checkpointer, TraineeMetrics(self.tracker)]
        if int(self.cfg.eval_every) > 0:
            every = _whole_rollouts(self.cfg.eval_every, self.rollout)  # whole rollouts: each policy once
            self.selection = CheckpointSelection(
                self.eval_cfg or self.env_cfg,
                selection_seeds(self.agent),
                every,
                self.out,
                tracker=self.tracker,
                batched=self.cfg.vec_env == "batched",
            )
            callbacks.append(self.selection)
        if self.cfg.progress:
            selection = self.selection
            callbacks.append(
                ProgressLines(
                    self.total,
                    every_s=float(self.cfg.progress_every_s),
                    best_score=(lambda: selection.best_score) if selection is not None else None,
                )
            )
        return callbacks + self.extra_callbacks

    # ----- phase 2 ----------------------------------------------------------------------------------------
    def learn(self) -> None:
        """PPO up to `total_timesteps`; on any interruption (Ctrl-C, SIGTERM, an error) the policy is saved."""
        assert self.model is not None and self.venv is not None and self.checkpointer is not None
        self.start_steps, t0 = int(self.model.num_timesteps), time.perf_counter()
        remaining = max(0, self.total - self.start_steps)
        interrupted = False
        with sigterm_interrupts():
            try:
                if remaining > 0:
                    self.model.learn(
                        remaining,
                        callback=CallbackList(self.callbacks),
                        reset_num_timesteps=False,
                        progress_bar=self.progress_bar,
                    )
            except BaseException:
                interrupted = True
                self._save_on_interrupt()
                raise
            finally:
                self._close_venv(quiet=interrupted)
        self.seconds = time.perf_counter() - t0
        save_checkpoint(self.model, self.ckpt_dir)

    def _save_on_interrupt(self) -> None:
        # Keep what was learned: the next run with this out_dir resumes from here. Mid-rollout the policy is
        # still the one of the rollout's start, so the checkpoint is stamped with that step count and a resumed
        # run ends on the same total as an uninterrupted one.
        assert self.checkpointer is not None
        if self.checkpointer.boundary > self.start_steps:
            self.model.num_timesteps = self.checkpointer.boundary
            path = save_checkpoint(self.model, self.ckpt_dir)
            print(f"interrupted: saved {path}; run the same command again to resume", flush=True)

    def _close_venv(self, quiet: bool) -> None:
        assert self.venv is not None
        try:
            self.venv.close()
        except Exception:
            if not quiet:  # after an interruption (e.g. SIGTERM also killed the env workers) the cause matters
                raise

    # ----- phase 3 ----------------------------------------------------------------------------------------
    def finalize(self) -> Path:
        """The artifact (best or final policy), train_summary.json and the tracker summary."""
        best = self.out / "best"
        use_best = (
            self.cfg.artifact_from == "best"
            and (best / "best_model.zip").is_file()
            and (best / "vecnormalize.pkl").is_file()
        )
        if use_best:
            model = algorithm_class(self.algo).load(best / "best_model.zip", device="cpu")
            stats: Any = best / "vecnormalize.pkl"
        else:
            model, stats = self.model, self.venv
        steps_this_run = int(self.model.num_timesteps) - self.start_steps
        images_per_step = self.env_cfg.batch_size * self.env_cfg.steps_per_action
        rate = steps_this_run / self.seconds if steps_this_run and self.seconds > 0 else None
        throughput = {
            "timesteps_this_run": steps_this_run,
            "seconds_this_run": self.seconds,
            "env_steps_per_s": rate,
            "trainee_images_per_s": rate * images_per_step if rate else None,
        }
        artifact = save_artifact(
            self.artifact_dir,
            model=model,
            vecnormalize=stats,
            env_config=self.env_cfg.to_dict(),
            algo=self.algo,
            extra_meta={
                "artifact_from": "best" if use_best else "final",
                "total_timesteps": self.total,
                "seed": self.seed,
                **throughput,
            },
        )
        atomic_write_json(self.out / "train_summary.json", throughput)
        self.tracker.summary({f"controller/{k}": v for k, v in throughput.items() if v is not None})
        self.lock.release()
        return artifact

    def run(self, tracker: Tracker | None = None) -> Path:
        """setup -> learn -> finalize; returns the artifact folder `<out_dir>/controller`."""
        try:
            if not self.setup(tracker):
                return self.artifact_dir
            self.learn()
            return self.finalize()
        finally:
            self.lock.release()


def train_controller(
    env_kwargs: Mapping[str, Any] | EnvConfig,
    agent: Mapping[str, Any],
    out_dir: str | Path,
    *,
    seed: int = 0,
    tracker: Tracker | None = None,
    eval_env_kwargs: Mapping[str, Any] | EnvConfig | None = None,
    extra_callbacks: list[BaseCallback] | None = None,
    progress: bool = False,
) -> Path:
    """Train (or resume) a controller; returns the artifact folder `<out_dir>/controller`.

    `progress` turns on SB3's progress bar; the periodic progress lines are `agent.progress` (on by default).
    """
    run = TrainingRun(
        env_kwargs,
        agent,
        out_dir,
        seed=seed,
        eval_env=eval_env_kwargs,
        extra_callbacks=extra_callbacks,
        progress_bar=progress,
    )
    return run.run(tracker)
