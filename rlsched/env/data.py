"""Data sets as in-memory tensors: loaded once per process, normalized, split by seed.

Everything a trainee needs per step is an index into tensors that already live on the target device,
so an environment step never touches a DataLoader, a worker process or the disk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision

DATA_DIR_ENV = "RLSCHED_DATA_DIR"
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rlsched" / "data"


@dataclass(frozen=True)
class DatasetSpec:
    torchvision_cls: str
    channels: int
    image_size: int
    num_classes: int
    val_size: int  # size of the validation split carved out of the official training set
    mean: tuple[float, ...]
    std: tuple[float, ...]
    official_train: int  # images in the official training set (training split + validation split)
    official_test: int  # images in the official test set

    @property
    def train_split(self) -> int:
        """Images in the training split: the official training set less the validation split."""
        return self.official_train - self.val_size


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec("FashionMNIST", 1, 28, 10, 10_000, (0.2860,), (0.3530,), 60_000, 10_000),
    "mnist": DatasetSpec("MNIST", 1, 28, 10, 10_000, (0.1307,), (0.3081,), 60_000, 10_000),
    "cifar10": DatasetSpec(
        "CIFAR10", 3, 32, 10, 5_000, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), 50_000, 10_000
    ),
}


class DataNotFoundError(FileNotFoundError):
    """The data set is not under the configured root and could not be downloaded."""


def resolve_data_dir(data_dir: str | os.PathLike | None) -> tuple[Path, bool]:
    """Return (root, may_download).

    Precedence: the explicit config key, then the RLSCHED_DATA_DIR environment variable, then a cache folder
    into which torchvision may download. A root that the user named is never downloaded into, so a read-only
    shared copy stays untouched.
    """
    if data_dir not in (None, ""):
        return Path(os.path.expanduser(str(data_dir))), False
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return Path(os.path.expanduser(env)), False
    return DEFAULT_CACHE, True


class _CIFAR10Unverified(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR-10 reader with the MD5 check reduced to an existence check.

    For re-packed copies (and the tests' tiny file in CIFAR-10's pickle layout); the unpickling code is
    torchvision's own.
    """

    def _check_integrity(self) -> bool:
        base = Path(self.root) / self.base_folder
        return all((base / name).is_file() for name, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        import pickle

        with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as f:
            data = pickle.load(f, encoding="latin1")
        self.classes = data[self.meta["key"]]
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


def _torchvision_split(name: str, root: Path, train: bool, download: bool, verify_checksums: bool):
    spec = DATASETS[name]
    cls = getattr(torchvision.datasets, spec.torchvision_cls)
    if name == "cifar10" and not verify_checksums:
        cls = _CIFAR10Unverified
    return cls(root=str(root), train=train, download=download)


def _as_uint8_nchw(ds) -> torch.Tensor:
    data = ds.data  # CIFAR-10: numpy N x H x W x C; MNIST family: uint8 tensor N x H x W
    data = torch.from_numpy(data).permute(0, 3, 1, 2) if isinstance(data, np.ndarray) else data.unsqueeze(1)
    return data.contiguous()


def _targets(ds) -> torch.Tensor:
    t = ds.targets
    return t.clone().long() if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.long)


_RAW_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def load_raw(
    name: str, data_dir: str | os.PathLike | None = None, verify_checksums: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Official train and test sets as uint8 NCHW images and int64 labels, cached per process."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {sorted(DATASETS)}")
    root, may_download = resolve_data_dir(data_dir)
    key = (name, str(root.resolve()), verify_checksums)
    if key in _RAW_CACHE:
        return _RAW_CACHE[key]
    try:
        train = _torchvision_split(name, root, True, False, verify_checksums)
        test = _torchvision_split(name, root, False, False, verify_checksums)
    except RuntimeError as missing:
        if not may_download:
            raise DataNotFoundError(
                f"{name} not found under {root}. Point the data root at a folder in torchvision's layout "
                f"(config key `env.data_dir`, or the environment variable {DATA_DIR_ENV}), or unset both "
                f"to download into {DEFAULT_CACHE}. torchvision said: {missing}"
            ) from missing
        try:
            train = _torchvision_split(name, root, True, True, verify_checksums)
            test = _torchvision_split(name, root, False, True, verify_checksums)
        except Exception as err:  # no network, a proxy, a full disk: all end the same way for the user
            raise DataNotFoundError(
                f"{name} is not in {root} and downloading it failed ({err}). Set the config key "
                f"`env.data_dir` or the environment variable {DATA_DIR_ENV} to a folder that holds it."
            ) from err
    out = (_as_uint8_nchw(train), _targets(train), _as_uint8_nchw(test), _targets(test))
    _RAW_CACHE[key] = out
    return out


def require_data(name: str, data_dir: str | os.PathLike | None = None, verify_checksums: bool = True) -> None:
    """Fail with DataNotFoundError now if the data set cannot be had, before an entry point creates folders.

    Loads the raw arrays into the per-process cache, so the env's own load later costs nothing more.
    """
    load_raw(name, data_dir, verify_checksums)


@dataclass
class DataSplits:
    """One seeded split, on one device.

    Training images stay in the shared normalized tensor `x_pool` and are addressed through `train_idx`, so a
    new split costs an index permutation, not a copy of the training set. `x_val` is the validation split and
    its first `val_probe` rows the fixed subset evaluated at every environment step.
    """

    x_pool: torch.Tensor
    y_pool: torch.Tensor
    train_idx: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    val_probe: int
    spec: DatasetSpec

    @property
    def train_size(self) -> int:
        return len(self.train_idx)

    @property
    def x_probe(self) -> torch.Tensor:
        return self.x_val[: self.val_probe]

    @property
    def y_probe(self) -> torch.Tensor:
        return self.y_val[: self.val_probe]

    def train_batch(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows are positions in the training split (0 .. train_size-1)."""
        idx = self.train_idx[rows]
        return self.x_pool[idx], self.y_pool[idx]


def _normalize(x: torch.Tensor, spec: DatasetSpec, device: torch.device) -> torch.Tensor:
    mean = torch.tensor(spec.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=device).view(1, -1, 1, 1)
    return (x.to(device, torch.float32) / 255.0 - mean) / std


_NORM_CACHE: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = {}


def load_normalized(
    name: str, data_dir: str | os.PathLike | None, device: torch.device, verify_checksums: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Official train and test sets, normalized float32 on `device`; computed once per process and device."""
    root, _ = resolve_data_dir(data_dir)
    key = (name, str(root.resolve()), str(device), verify_checksums)
    if key not in _NORM_CACHE:
        spec = DATASETS[name]
        x_tr, y_tr, x_te, y_te = load_raw(name, data_dir, verify_checksums)
        _NORM_CACHE[key] = (
            _normalize(x_tr, spec, device),
            y_tr.to(device),
            _normalize(x_te, spec, device),
            y_te.to(device),
        )
    return _NORM_CACHE[key]


def _check_not_above(label: str, value: int | None, maximum: int, what: str) -> None:
    # A silent clamp would run on fewer examples than the config (and the task key) says.
    if value is not None and value > maximum:
        raise ValueError(f"{label}={value} exceeds {what} ({maximum}); use at most {maximum}, or null for all of it")


def check_sizes(name: str, train_size: int | None, val_size: int | None, val_probe: int, test_size: int | None) -> None:
    """Validate subset sizes against the data set's split sizes without loading any data."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {sorted(DATASETS)}")
    spec = DATASETS[name]
    for label, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if value is not None and value < 1:
            raise ValueError(f"{label} must be >= 1 or null (the whole split), got {value}")
    _check_not_above("train_size", train_size, spec.train_split, f"the {name} training split")
    _check_not_above("val_size", val_size, spec.val_size, f"the {name} validation split")
    _check_not_above("test_size", test_size, spec.official_test, f"the {name} test set")
    if val_probe < 1:
        raise ValueError(f"val_probe must be >= 1, got {val_probe}")
    _check_not_above("val_probe", val_probe, val_size or spec.val_size, "val_size")


def make_splits(
    name: str,
    *,
    split_seed: int,
    data_dir: str | os.PathLike | None = None,
    train_size: int | None = None,
    val_size: int | None = None,
    val_probe: int = 1000,
    test_size: int | None = None,
    device: torch.device | str = "cpu",
    verify_checksums: bool = True,
) -> DataSplits:
    """Seeded train/validation split of the official training set; the official test set held out.

    `train_size`/`val_size`/`test_size` take the first n of each (already shuffled) split for fast runs.
    """
    check_sizes(name, train_size, val_size, val_probe, test_size)
    device = torch.device(device)
    x_pool, y_pool, x_te, y_te = load_normalized(name, data_dir, device, verify_checksums)
    train_idx, val_idx = split_indices(
        name, split_seed, len(y_pool), train_size=train_size, val_size=val_size, val_probe=val_probe, data_dir=data_dir
    )
    train_idx, val_idx = train_idx.to(device), val_idx.to(device)
    _check_not_above("test_size", test_size, len(y_te), f"the {name} test set under {resolve_data_dir(data_dir)[0]}")
    test_n = len(y_te) if test_size is None else test_size
    return DataSplits(
        x_pool=x_pool,
        y_pool=y_pool,
        train_idx=train_idx,
        x_val=x_pool[val_idx],
        y_val=y_pool[val_idx],
        x_test=x_te[:test_n],
        y_test=y_te[:test_n],
        val_probe=val_probe,
        spec=DATASETS[name],
    )


def split_indices(
    name: str,
    split_seed: int,
    n: int,
    *,
    train_size: int | None = None,
    val_size: int | None = None,
    val_probe: int = 1000,
    data_dir: str | os.PathLike | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(training rows, validation rows) of the `n` official training images for `split_seed`, on the CPU: the
    split `make_splits` makes, as indices only (a population of trainees holds these, not N copies of images)."""
    spec = DATASETS[name]
    full_val = min(spec.val_size, n // 2)  # tiny test files are smaller than the real split
    gen = torch.Generator().manual_seed(int(split_seed))
    perm = torch.randperm(n, generator=gen)
    val_idx, train_idx = perm[:full_val], perm[full_val:]
    # The loaded files may hold fewer images than the official sets (re-packed or test copies): check again.
    root = resolve_data_dir(data_dir)[0]
    _check_not_above("train_size", train_size, len(train_idx), f"the {name} training split under {root}")
    _check_not_above("val_size", val_size, len(val_idx), f"the {name} validation split under {root}")
    _check_not_above("val_probe", val_probe, val_size or len(val_idx), "the validation split")
    if train_size is not None:
        train_idx = train_idx[:train_size]
    if val_size is not None:
        val_idx = val_idx[:val_size]
    return train_idx, val_idx
