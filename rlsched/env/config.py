"""`EnvConfig`: everything the LRControl env accepts, validated at construction before any data is loaded.

The config is built from one dataclass per part of the env (data, trainee, episode, action, observation, reward,
end-of-episode evaluation, compute, task set); each part holds its options' defaults and help text and checks its
own values, and `EnvConfig` checks what spans parts. The namespace stays flat (`env.batch_size=...` in Hydra,
`gym.make(..., batch_size=...)`, and the stored configs every results folder and artifact identifies its runs by),
so a part is where an option is *defined*, not a prefix one has to type.

Types are checked from the annotations (`_check_types`), so a field's annotation is its type rule; Hydra checks the
same annotations while composing (rlsched/schema.py derives its structured config from these dataclasses).

Kept apart from the env so that the env's parts (actions, observer, rewards, reference) can name the config type
without importing the env that imports them.
"""

from __future__ import annotations

import math
import numbers
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from rlsched.env.data import DATASETS, DataSplits, check_sizes, make_splits
from rlsched.env.features import FEATURE_PRESETS, OBS_TRANSFORMS, feature_table
from rlsched.env.models import MODELS, OPTIMIZERS, build_model
from rlsched.env.options import ACTION_TYPES, PREDICTION_SOURCES, REWARD_TYPES, SCALE_PER
from rlsched.env.precision import PRECISIONS, default_eval_chunk
from rlsched.env.tasks import load_task_set, task_env_kwargs
from rlsched.env.trainee import observed_of, split_params

# Fields added after results folders and artifacts began storing env configs; None (their default) means "absent".
LATER_FIELDS = ("reward_reference", "reference_cache_dir", "controlled_params", "other_lr", "precision")
LATER_FIELDS += ("tasks", "task")

# Fields that say where the data lies, whether its checksums are verified, how many CPU threads run and where
# reference curves are cached: the same numbers come out whatever their value. `device` is apart: its *kind*
# (CPU or GPU kernels round differently) changes numbers, which card does not. See `EnvConfig.identity`.
PLACE_FIELDS = ("data_dir", "verify_checksums", "torch_threads", "reference_cache_dir")

# The trainee's training setup: what a tuning study of a baseline is a study of (rlsched.bench.tuning names its
# studies by these; rlsched.config's tuned-settings key extends them). Stored identities depend on this order.
TRAINING_FIELDS = (
    "dataset",
    "model",
    "model_kwargs",
    "optimizer",
    "momentum",
    "weight_decay",
    "batch_size",
    "steps_per_action",
    "episode_steps",
    "train_size",
    "val_size",
    "val_probe",
    "split_seed",
    "lr_min",
    "lr_max",
    "divergence_loss",
)


def doc(text: str) -> dict[str, str]:
    """A field's metadata: its one-line help, shown beside its default in docs/env_options.md."""
    return {"help": text}


def _is_real(value: object) -> bool:
    """A real number, not a bool (True == 1 would pass for a count) and not a string ("0.01" > 0 is a TypeError)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _folder_or_none(name: str, value: Any) -> str | None:
    """A folder path as a string (a Path is accepted), or None."""
    if value is None:
        return None
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"{name} must be a folder path or null, got {value!r}")
    return os.fspath(value)


def scalar_rule(hint: Any) -> tuple[type, bool] | None:
    """(int | float | bool | str, whether null is allowed) for a scalar annotation, else None (checked by hand)."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1 and rest[0] in (int, float) and len(args) == 2:
            return rest[0], True
        return None  # str | None (paths, labels) and wider unions have rules of their own
    return (hint, False) if hint in (int, float, bool, str) else None


# ----- the parts ---------------------------------------------------------------------------------------------------


@dataclass
class DataConfig:
    """What the trainee learns from: the data set and the sizes of its splits."""

    dataset: str = field(default="fashion_mnist", metadata=doc("fashion_mnist | mnist | cifar10"))
    data_dir: str | None = field(
        default=None,
        metadata=doc(
            "torchvision-layout data folder, only read; null: $RLSCHED_DATA_DIR, else "
            "download into ~/.cache/rlsched/data"
        ),
    )
    verify_checksums: bool = field(default=True, metadata=doc("check the data files' MD5 sums before use"))
    train_size: int | None = field(
        default=None, metadata=doc("training examples; null: the whole training split (50k; CIFAR-10 45k)")
    )
    val_size: int | None = field(
        default=None, metadata=doc("validation examples; null: the whole validation split (10k; CIFAR-10 5k)")
    )
    val_probe: int = field(
        default=2000, metadata=doc("validation examples evaluated at every step (the observed loss)")
    )
    test_size: int | None = field(default=None, metadata=doc("test examples; null: the whole official test set"))
    split_seed: int | None = field(
        default=None, metadata=doc("null: the split follows the reset seed; an int fixes it for all episodes")
    )

    def _check_data(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; allowed: {sorted(DATASETS)}")
        self.data_dir = _folder_or_none("data_dir", self.data_dir)
        check_sizes(self.dataset, self.train_size, self.val_size, self.val_probe, self.test_size)


@dataclass
class TraineeConfig:
    """The network trained in an episode, its optimizer, and which of its parameters the controller drives."""

    model: str = field(
        default="cnn", metadata=doc("mlp | cnn (the paper's) | resnet (CIFAR-style); Hydra's model group sets mlp")
    )
    model_kwargs: dict = field(
        default_factory=dict, metadata=doc("the model's options, e.g. {hidden: [128]} for the MLP")
    )
    optimizer: str = field(default="adam", metadata=doc("adam | sgd | schedulefree_adamw | prodigy | dadapt_adam"))
    initial_lr: float = field(
        default=0.01, metadata=doc("the rate at reset (a learned controller scales it from there)")
    )
    momentum: float = field(default=0.9, metadata=doc("SGD momentum / Adam beta1"))
    weight_decay: float = field(default=0.0, metadata=doc("the optimizer's weight decay"))
    batch_size: int = field(default=1000, metadata=doc("training examples per optimizer step"))
    eval_batch_size: int | None = field(
        default=None,
        metadata=doc(
            "images per evaluation call; null: per model and device (CPU: MLP 2000, CNN/ResNet 128; GPU: 262144, 16384)"
        ),
    )
    controlled_params: tuple[str, ...] | None = field(
        default=None,
        metadata=doc(
            "module-name prefixes whose LR the controller sets (e.g. [head]); null: the whole network. The observed "
            "layers are then the controlled ones' last two dense weights"
        ),
    )
    other_lr: float | None = field(
        default=None, metadata=doc("fixed LR of the parameters not controlled; null: initial_lr")
    )

    def _check_trainee(self) -> None:
        for name, allowed in (("model", MODELS), ("optimizer", OPTIMIZERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; allowed: {sorted(allowed)}")
        if not isinstance(self.model_kwargs, Mapping):
            raise ValueError(f"model_kwargs must be a mapping of the model's options, got {self.model_kwargs!r}")
        self.model_kwargs = dict(self.model_kwargs)
        if not self.initial_lr > 0:
            raise ValueError(f"initial_lr must be > 0, got {self.initial_lr}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    def _check_controlled(self, net: torch.nn.Module) -> None:
        """controlled_params name modules of this trainee, and they hold layers to observe; other_lr needs them."""
        cp = self.controlled_params
        if cp is None:
            if self.other_lr is not None:
                raise ValueError(
                    f"other_lr={self.other_lr} is the rate of the parameters not controlled, but controlled_params "
                    "is null (the controller drives the whole network); set controlled_params or leave other_lr null"
                )
            return
        if isinstance(cp, str | bytes) or not isinstance(cp, Sequence) or not cp:
            raise ValueError(f"controlled_params must be a non-empty list of module names (e.g. [head]), got {cp!r}")
        if not all(isinstance(p, str) and p for p in cp) or len(set(cp)) != len(cp):
            raise ValueError(f"controlled_params must be distinct, non-empty module names, got {list(cp)!r}")
        self.controlled_params = tuple(cp)
        controlled, _ = split_params(net, self.controlled_params)
        observed_of(controlled)
        if self.other_lr is not None and not (math.isfinite(self.other_lr) and self.other_lr > 0):
            raise ValueError(f"other_lr must be a finite rate > 0 or null (initial_lr), got {self.other_lr}")


@dataclass
class EpisodeConfig:
    """How long an episode is, in env steps of K optimizer steps each."""

    steps_per_action: int = field(default=1, metadata=doc("K: optimizer steps per env step"))
    episode_steps: int = field(
        default=100, metadata=doc("env steps per episode (the budget is K x episode_steps optimizer steps)")
    )

    def _check_episode(self) -> None:
        for name in ("steps_per_action", "episode_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ActionConfig:
    """What an action means and the range the rate is kept in."""

    action: str = field(
        default="scale",
        metadata=doc(
            "scale | discrete | log_lr (RQ4) | prior_offset (a log-LR offset around "
            "warm-up+cosine at initial_lr over the episode)"
        ),
    )
    scale_range: tuple[float, float] = field(
        default=(0.965, 1.035),
        metadata=doc("scale: the multiplier range [low, high], per optimizer step (the paper's)"),
    )
    scale_per: str = field(
        default="optimizer_step",
        metadata=doc(
            "optimizer_step: the multiplier acts at each of the K optimizer steps, so one env step moves the LR by up "
            "to x[low^K, high^K] (the paper's range); env_step: once per env step (K times narrower in log space)"
        ),
    )
    discrete_multipliers: tuple[float, ...] = field(
        default=(1 / 1.05, 1.0, 1.05), metadata=doc("discrete: the multipliers to choose from")
    )
    lr_min: float = field(default=1e-5, metadata=doc("the LR is clipped into [lr_min, lr_max]"))
    lr_max: float = field(default=1e-1, metadata=doc("see lr_min"))

    def _check_action(self) -> None:
        for name, allowed in (("action", ACTION_TYPES), ("scale_per", SCALE_PER)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; allowed: {sorted(allowed)}")
        sr = self.scale_range
        if isinstance(sr, str | bytes) or not isinstance(sr, Sequence) or len(sr) != 2 or not all(map(_is_real, sr)):
            raise ValueError(f"scale_range must be two numbers [low, high], got {sr!r}")
        dm = self.discrete_multipliers
        if isinstance(dm, str | bytes) or not isinstance(dm, Sequence) or not all(map(_is_real, dm)):
            raise ValueError(f"discrete_multipliers must be a list of numbers, got {dm!r}")
        self.scale_range = tuple(float(v) for v in sr)
        self.discrete_multipliers = tuple(float(v) for v in dm)
        if not 0 < self.lr_min < self.lr_max:
            raise ValueError(f"need 0 < lr_min < lr_max, got lr_min={self.lr_min}, lr_max={self.lr_max}")
        lo, hi = self.scale_range
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be [low, high] with 0 < low <= high, got {list(self.scale_range)}")
        if not self.discrete_multipliers or min(self.discrete_multipliers) <= 0:
            raise ValueError(f"discrete_multipliers must be positive, got {list(self.discrete_multipliers)}")


@dataclass
class ObservationConfig:
    """What the controller sees, and the bounds that count as divergence."""

    features: tuple[str, ...] | str = field(
        default="default",
        metadata=doc(
            "a preset, default (the paper's 9 + progress) | paper (the authors' 9) | invariant (the same 10, "
            "independent of width, data set and initial LR: for task sets), or a list of feature names"
        ),
    )
    obs_transform: str = field(default="none", metadata=doc("none | symlog"))
    ema_decay: float = field(default=0.8, metadata=doc("decay of the prediction features' EMAs"))
    prediction_source: str = field(
        default="train", metadata=doc("train (the paper: the training batch) | validation (the fixed probe)")
    )
    max_loss: float = field(default=100.0, metadata=doc("losses above this count as divergence"))
    weight_bound: float = field(
        default=100.0,
        metadata=doc("W: the weight-statistics features are clipped, means into [-W, W], variances into [0, W^2]"),
    )

    def _check_observation(self) -> None:
        for name, allowed in (("obs_transform", OBS_TRANSFORMS), ("prediction_source", PREDICTION_SOURCES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; allowed: {sorted(allowed)}")
        if isinstance(self.features, str):
            if self.features not in FEATURE_PRESETS:
                raise ValueError(f"unknown feature preset {self.features!r}; allowed: {sorted(FEATURE_PRESETS)}")
            self.features = FEATURE_PRESETS[self.features]
        self.features = tuple(self.features)
        known = feature_table(1.0, 1.0, 2.0, 1.0)
        bad = [f for f in self.features if f not in known]
        if bad or not self.features:
            raise ValueError(f"unknown feature(s) {bad or '(empty list)'}; allowed: {list(known)}")
        if len(set(self.features)) != len(self.features):
            raise ValueError(f"features repeat a name: {list(self.features)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.max_loss <= 0 or self.weight_bound <= 0:
            raise ValueError("max_loss and weight_bound must be > 0")


@dataclass
class RewardConfig:
    """What the controller earns per step (docs/env.md#rewards) and how divergence is scored."""

    reward: str = field(
        default="neg_val_loss",
        metadata=doc(
            "neg_val_loss | paper (reward_baseline - val loss) | final_only (RQ3) | "
            "log_diff | paired_log (RQ3: log L_ref,t - log L_t against reward_reference)"
        ),
    )
    reward_baseline: float = field(default=2.0, metadata=doc("reward=paper: reward_baseline - val_loss"))
    divergence_loss: float | None = field(
        default=None, metadata=doc("null: 2 ln(num_classes); a diverged run is scored as if stuck there")
    )
    divergence_penalty: float | None = field(
        default=None, metadata=doc("a fixed reward for a diverged step, instead of the computed one")
    )
    # A baseline *name* is not accepted here: rlsched.config.resolve_reward_reference turns one into its tuned spec.
    reward_reference: dict | None = field(
        default=None,
        metadata=doc(
            "paired_log: the baseline run on the same trainee, as a controller "
            "spec {kind: plateau, lr: 0.01, ...} (Hydra also takes a tuned "
            "baseline's name)"
        ),
    )
    reference_cache_dir: str | None = field(
        default=None,
        metadata=doc(
            "paired_log: also keep reference curves as JSON files here (null: in memory only); changes no number"
        ),
    )

    def _check_reward(self) -> None:
        if self.reward not in REWARD_TYPES:
            raise ValueError(f"unknown reward {self.reward!r}; allowed: {sorted(REWARD_TYPES)}")
        ref = self.reward_reference
        example = "{kind: plateau, lr: 0.01, factor: 0.5, patience: 1}"
        if isinstance(ref, str):
            raise ValueError(
                f"reward_reference must be a controller spec such as {example} or null, got the name {ref!r}; "
                "rlsched.config.resolve_reward_reference turns a baseline name into its tuned spec"
            )
        if ref is None:
            if self.reward == "paired_log":
                raise ValueError(
                    f"reward=paired_log needs reward_reference, the baseline it is paired with, e.g. {example}"
                )
        elif not isinstance(ref, Mapping) or "kind" not in ref:
            raise ValueError(f"reward_reference must be a controller spec with a 'kind', e.g. {example}; got {ref!r}")
        else:  # whether the spec names a valid baseline is for the reference runner to say, when the env is built
            self.reward_reference = dict(ref)
        self.reference_cache_dir = _folder_or_none("reference_cache_dir", self.reference_cache_dir)


@dataclass
class EvaluationConfig:
    """End-of-episode evaluations, never used in observation or reward (except final_only's full val loss)."""

    final_val_eval: bool = field(
        default=True, metadata=doc("evaluate the whole validation split at the end (info['final_val_loss'])")
    )
    test_eval: bool = field(default=True, metadata=doc("evaluate the test set at the end (info['test_loss'])"))


@dataclass
class ComputeConfig:
    """Where and in which arithmetic the trainee runs."""

    device: str = field(default="cpu", metadata=doc("cpu | cuda | cuda:N | auto"))
    precision: str | None = field(
        default=None, metadata=doc("null or fp32 (exact float32) | tf32 (GPU matrix units) | bf16 (autocast)")
    )
    torch_threads: int | None = field(
        default=None,
        metadata=doc(
            "torch's CPU threads for this process; null: leave torch's setting. Outside the identity, though CPU "
            "sums differ from the 6th digit between thread counts (the committed rows replay with 1)"
        ),
    )

    def _check_compute(self) -> None:
        if self.precision == "fp32":
            self.precision = None  # the default, spelled out: the same identity as leaving it null
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; allowed: {list(PRECISIONS)} or null (fp32)")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1 or null, got {self.torch_threads}")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available; use device=cpu or device=auto")


@dataclass
class TaskSetConfig:
    """Task sets (rlsched.env.tasks, docs/tasksets.md): each reset draws one of the set's tasks from the seed."""

    tasks: str | dict | None = field(
        default=None,
        metadata=doc(
            "a task set's name (conf/tasks/<name>.yaml); stored resolved "
            "({name, tasks}), so a run's identity holds the tasks' contents"
        ),
    )
    task: str | None = field(
        default=None, metadata=doc("this config's task name (set by rlsched.env.tasks for a task of a set); a label")
    )


# Order of the parts = order of the fields in every stored config (dataclass fields follow the reversed MRO).
PARTS = (
    DataConfig,
    TraineeConfig,
    EpisodeConfig,
    ActionConfig,
    ObservationConfig,
    RewardConfig,
    EvaluationConfig,
    ComputeConfig,
    TaskSetConfig,
)


@dataclass
class EnvConfig(
    TaskSetConfig,
    ComputeConfig,
    EvaluationConfig,
    RewardConfig,
    ObservationConfig,
    ActionConfig,
    EpisodeConfig,
    TraineeConfig,
    DataConfig,
):
    """Every option of the env, flat; `PARTS` say where each is defined. Build with `from_kwargs` (validated)."""

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> EnvConfig:
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ValueError(f"unknown env option(s) {unknown}; allowed: {sorted(allowed)}")
        cfg = cls(**kwargs)
        # A chunk chosen per model must be chosen again for each task's model, not copied from the set's.
        cfg._eval_chunk_given = kwargs.get("eval_batch_size") is not None
        cfg.validate()
        return cfg

    @classmethod
    def coerce(cls, env: EnvConfig | Mapping[str, Any]) -> EnvConfig:
        """A validated config from a config (returned as it is: never validated twice) or from its keywords."""
        return env if isinstance(env, EnvConfig) else cls.from_kwargs(**dict(env))

    def validate(self) -> None:
        self._check_types()
        self._check_data()
        self._check_trainee()
        self._check_episode()
        self._check_action()
        self._check_observation()
        self._check_reward()
        self._check_compute()
        # Build the trainee on the meta device (no memory, no RNG draw) so that a typo in model_kwargs or a
        # bad depth fails here rather than at the first reset.
        with torch.device("meta"):
            spec = DATASETS[self.dataset]
            net = build_model(self.model, spec.channels, spec.image_size, spec.num_classes, **self.model_kwargs)
        self._check_controlled(net)
        if not self.lr_min <= self.initial_lr <= self.lr_max:
            raise ValueError(
                f"initial_lr={self.initial_lr} lies outside [lr_min, lr_max]=[{self.lr_min}, {self.lr_max}]"
            )
        if self.eval_batch_size is None:
            self.eval_batch_size = default_eval_chunk(self.model, self.device)
        if self.eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be >= 1, got {self.eval_batch_size}")
        if self.divergence_loss is not None and not 0 < self.divergence_loss <= self.max_loss:
            raise ValueError(f"divergence_loss must be in (0, max_loss], got {self.divergence_loss}")
        self._check_tasks()
        if self.train_size is not None and self.batch_size > self.train_size:
            raise ValueError(f"batch_size={self.batch_size} exceeds train_size={self.train_size}")

    def _check_types(self) -> None:
        """Each scalar field has the kind of value its annotation says, before any comparison could raise a
        TypeError or a float count be rounded up silently. Integral floats (3.0) become ints; everything else keeps
        its type. Lists, mappings, paths and names have rules of their own in their part's check."""
        for name, (kind, nullable) in SCALAR_RULES.items():
            value = getattr(self, name)
            if value is None and nullable:
                continue
            null = " or null" if nullable else ""
            if kind is int:
                if not _is_real(value) or not math.isfinite(value) or value != int(value):
                    raise ValueError(f"{name} must be an integer{null}, got {value!r}")
                setattr(self, name, int(value))
            elif kind is float and not _is_real(value):
                raise ValueError(f"{name} must be a number{null}, got {value!r}")
            elif kind is bool and not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false, got {value!r}")
            elif kind is str and not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")

    def _check_tasks(self) -> None:
        if self.task is not None and not isinstance(self.task, str):
            raise ValueError(f"task must be a task name (a string) or null, got {self.task!r}")
        if self.tasks is None:
            return
        ts = load_task_set(self.tasks)
        self.tasks = ts.to_dict()
        for name in ts.names:
            self.task_config(name)  # each task is a valid env config with the set's spaces

    def task_config(self, name: str) -> EnvConfig:
        """The single-task config of task `name` of this config's task set."""
        ts = load_task_set(self.tasks)
        keep_chunk = getattr(self, "_eval_chunk_given", True)
        base = {k: v for k, v in asdict(self).items() if k != "eval_batch_size" or keep_chunk}
        try:
            cfg = EnvConfig.from_kwargs(**task_env_kwargs(base, ts, name))
        except ValueError as err:
            raise ValueError(f"task {name!r} of task set {ts.name!r}: {err}") from err
        return cfg

    def make_splits(self, split_seed: int, device: torch.device) -> DataSplits:
        """The data split of `split_seed` with this config's data set and subset sizes, on `device`."""
        return make_splits(
            self.dataset,
            split_seed=split_seed,
            data_dir=self.data_dir,
            train_size=self.train_size,
            val_size=self.val_size,
            val_probe=self.val_probe,
            test_size=self.test_size,
            device=device,
            verify_checksums=self.verify_checksums,
        )

    def to_dict(self) -> dict:
        """Every field, tuples as lists; the fields added after run identities were first stored
        (`LATER_FIELDS`) only when set, so that every earlier config keeps its identity and its stored runs."""
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        for k in LATER_FIELDS:
            if d[k] is None:
                del d[k]
        return d

    def identity(self, device: str = "kind") -> dict[str, Any]:
        """What this config computes: `to_dict` less PLACE_FIELDS. The one answer to "same numbers?" behind every
        stored identity: results rows (rlsched.bench.harness), reference-curve caches, training runs.

        `device="kind"` keeps the device as its kind ("auto" resolved here; "cuda:1" and "cuda" are one kind);
        `device="drop"` leaves it out (a training run may resume on another machine)."""
        d = self.to_dict()
        for key in PLACE_FIELDS:
            d.pop(key, None)
        if device == "drop":
            del d["device"]
            return d
        if device != "kind":
            raise ValueError(f"device must be 'kind' or 'drop', got {device!r}")
        dev = d["device"]
        if dev == "auto":
            dev = "cuda" if torch.cuda.is_available() else "cpu"
        d["device"] = dev.split(":")[0]
        return d


SCALAR_RULES: dict[str, tuple[type, bool]] = {
    name: rule for name, hint in typing.get_type_hints(EnvConfig).items() if (rule := scalar_rule(hint)) is not None
}


def part_of(name: str) -> type:
    """The part (DataConfig, ...) that defines option `name`."""
    for part in PARTS:
        if name in part.__dataclass_fields__ and name in part.__annotations__:
            return part
    raise KeyError(name)
