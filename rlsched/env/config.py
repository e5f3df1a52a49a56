"""`EnvConfig`: everything the LRControl env accepts, validated at construction before any data is loaded.

Kept apart from the env so that the env's parts (actions, observer, rewards, reference) can name the config type
without importing the env that imports them.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields

import torch

from rlsched.env.data import DATASETS, DataSplits, check_sizes, make_splits
from rlsched.env.features import DEFAULT_FEATURES, FEATURE_PRESETS, OBS_TRANSFORMS, feature_table
from rlsched.env.models import MODELS, OPTIMIZERS, build_model
from rlsched.env.options import ACTION_TYPES, PREDICTION_SOURCES, REWARD_TYPES, SCALE_PER
from rlsched.env.precision import PRECISIONS, default_eval_chunk
from rlsched.env.tasks import load_task_set, task_env_kwargs
from rlsched.env.trainee import observed_of, split_params

# Fields added after results folders and artifacts began storing env configs; None (their default) means "absent".
LATER_FIELDS = ("reward_reference", "reference_cache_dir", "controlled_params", "other_lr", "precision")
LATER_FIELDS += ("tasks", "task")


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

# Field kinds, checked before anything else (see EnvConfig._check_types).
INT_FIELDS = ("val_probe", "batch_size", "steps_per_action", "episode_steps")
OPTIONAL_INT_FIELDS = ("eval_batch_size", "train_size", "val_size", "test_size", "split_seed", "torch_threads")
REAL_FIELDS = ("initial_lr", "momentum", "weight_decay", "lr_min", "lr_max", "ema_decay", "max_loss")
REAL_FIELDS += ("weight_bound", "reward_baseline")
OPTIONAL_REAL_FIELDS = ("divergence_loss", "divergence_penalty", "other_lr")
BOOL_FIELDS = ("verify_checksums", "final_val_eval", "test_eval")
STR_FIELDS = ("dataset", "model", "optimizer", "action", "scale_per", "obs_transform", "prediction_source")
STR_FIELDS += ("reward", "device")


def _is_real(value: object) -> bool:
    """A real number, not a bool (True == 1 would pass for a count) and not a string ("0.01" > 0 is a TypeError)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


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
    # Images per evaluation call; null: chosen for the model and device (rlsched.env.precision.default_eval_chunk: 2000
    # for the MLP and 128 for the convolutional models on a CPU, 262144 and 16384 on a GPU), resolved at construction.
    eval_batch_size: int | None = None
    # The parameters whose LR the controller sets, as module-name prefixes of the trainee (["head"] for the MLP's
    # output layer, ["fc1", "fc2"] for the CNN's dense layers); null: the whole network. The observed layers are
    # then the controlled ones' last two dense weights (the weight and bias of the only one).
    controlled_params: tuple[str, ...] | None = None
    other_lr: float | None = None  # the fixed LR of the parameters not controlled; null: initial_lr
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
    # reward="paired_log" (log L_ref,t - log L_t): the reference baseline run on the same trainee, as a controller
    # spec for rlsched.control.make_controller, e.g. {kind: plateau, lr: 0.01, factor: 0.5, patience: 1}. A
    # baseline *name* is not accepted here: rlsched.config.resolve_reward_reference turns one into its tuned spec.
    reward_reference: dict | None = None
    # Reference curves are cached in memory per process; with a folder, also as one JSON file per trainee there.
    # Where the cache lies changes no number.
    reference_cache_dir: str | None = None
    # end-of-episode evaluation (never used in observation or reward, except final_only's full val loss)
    final_val_eval: bool = True
    test_eval: bool = True
    # compute
    device: str = "cpu"  # "cpu", "cuda", "cuda:N" or "auto"
    # Trainee arithmetic: null or "fp32" (exact float32, the default), "tf32" (GPU matrix units) or "bf16" (autocast)
    precision: str | None = None
    torch_threads: int | None = None
    # task sets (rlsched.env.tasks): a set's name (conf/tasks/<name>.yaml) makes every reset draw one of its tasks
    # from the seed; stored resolved ({name, tasks}), so a run's identity holds the tasks' contents.
    tasks: str | dict | None = None
    task: str | None = None  # the name of this config's task (set by rlsched.env.tasks.task_env_kwargs); a label

    @classmethod
    def from_kwargs(cls, **kwargs) -> EnvConfig:
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise ValueError(f"unknown env option(s) {unknown}; allowed: {sorted(allowed)}")
        cfg = cls(**kwargs)
        # A chunk chosen per model must be chosen again for each task's model, not copied from the set's.
        cfg._eval_chunk_given = kwargs.get("eval_batch_size") is not None
        cfg.validate()
        return cfg

    def validate(self) -> None:
        def one_of(name: str, value, allowed) -> None:
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; allowed: {sorted(allowed)}")

        self._check_types()
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
            net = build_model(self.model, spec.channels, spec.image_size, spec.num_classes, **self.model_kwargs)
        self._check_controlled(net)
        if not self.initial_lr > 0:
            raise ValueError(f"initial_lr must be > 0, got {self.initial_lr}")
        if not 0 < self.lr_min < self.lr_max:
            raise ValueError(f"need 0 < lr_min < lr_max, got lr_min={self.lr_min}, lr_max={self.lr_max}")
        if not self.lr_min <= self.initial_lr <= self.lr_max:
            raise ValueError(
                f"initial_lr={self.initial_lr} lies outside [lr_min, lr_max]=[{self.lr_min}, {self.lr_max}]"
            )
        if self.eval_batch_size is None:
            self.eval_batch_size = default_eval_chunk(self.model, self.device)
        if self.precision == "fp32":
            self.precision = None  # the default, spelled out: the same identity as leaving it null
        if self.precision is not None and self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; allowed: {list(PRECISIONS)} or null (fp32)")
        for name in ("steps_per_action", "episode_steps", "batch_size", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        lo, hi = self.scale_range  # two numbers: _check_types
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be [low, high] with 0 < low <= high, got {list(self.scale_range)}")
        if not self.discrete_multipliers or min(self.discrete_multipliers) <= 0:
            raise ValueError(f"discrete_multipliers must be positive, got {list(self.discrete_multipliers)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.max_loss <= 0 or self.weight_bound <= 0:
            raise ValueError("max_loss and weight_bound must be > 0")
        if self.divergence_loss is not None and not 0 < self.divergence_loss <= self.max_loss:
            raise ValueError(f"divergence_loss must be in (0, max_loss], got {self.divergence_loss}")
        self._check_reward_reference()
        self._check_tasks()
        if self.reference_cache_dir is not None:
            if not isinstance(self.reference_cache_dir, str | os.PathLike):
                raise ValueError(f"reference_cache_dir must be a folder path or null, got {self.reference_cache_dir!r}")
            self.reference_cache_dir = os.fspath(self.reference_cache_dir)
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError(f"torch_threads must be >= 1 or null, got {self.torch_threads}")
        if self.device != "auto" and not (self.device == "cpu" or self.device.startswith("cuda")):
            raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {self.device!r}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={self.device!r} but CUDA is not available; use device=cpu or device=auto")
        check_sizes(self.dataset, self.train_size, self.val_size, self.val_probe, self.test_size)
        if self.train_size is not None and self.batch_size > self.train_size:
            raise ValueError(f"batch_size={self.batch_size} exceeds train_size={self.train_size}")

    def _check_types(self) -> None:
        """Each field has the kind of value it needs, before any comparison could raise a TypeError or a float
        count be rounded up silently. Integral floats (3.0) become ints; everything else keeps its type."""
        for name in INT_FIELDS + OPTIONAL_INT_FIELDS:
            value = getattr(self, name)
            if value is None and name in OPTIONAL_INT_FIELDS:
                continue
            if not _is_real(value) or not math.isfinite(value) or value != int(value):
                null = " or null" if name in OPTIONAL_INT_FIELDS else ""
                raise ValueError(f"{name} must be an integer{null}, got {value!r}")
            setattr(self, name, int(value))
        for name in REAL_FIELDS + OPTIONAL_REAL_FIELDS:
            value = getattr(self, name)
            if not (_is_real(value) or (value is None and name in OPTIONAL_REAL_FIELDS)):
                null = " or null" if name in OPTIONAL_REAL_FIELDS else ""
                raise ValueError(f"{name} must be a number{null}, got {value!r}")
        for name in BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")
        for name in STR_FIELDS:
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
        if not isinstance(self.model_kwargs, Mapping):
            raise ValueError(f"model_kwargs must be a mapping of the model's options, got {self.model_kwargs!r}")
        sr = self.scale_range
        if isinstance(sr, str | bytes) or not isinstance(sr, Sequence) or len(sr) != 2 or not all(map(_is_real, sr)):
            raise ValueError(f"scale_range must be two numbers [low, high], got {sr!r}")
        dm = self.discrete_multipliers
        if isinstance(dm, str | bytes) or not isinstance(dm, Sequence) or not all(map(_is_real, dm)):
            raise ValueError(f"discrete_multipliers must be a list of numbers, got {dm!r}")

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

    def _check_reward_reference(self) -> None:
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
            return
        if not isinstance(ref, Mapping) or "kind" not in ref:
            raise ValueError(f"reward_reference must be a controller spec with a 'kind', e.g. {example}; got {ref!r}")
        # Whether the spec names a valid baseline is for the reference runner to say, when the env is built.
        self.reward_reference = dict(ref)

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
