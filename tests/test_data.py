"""Data loading on the real Fashion-MNIST and MNIST copies, and CIFAR-10 on a tiny file in its own layout."""

from __future__ import annotations

import collections
import os
import pickle
import struct
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import rlsched.env.data as data
from rlsched.env import ENV_ID
from rlsched.env.data import (
    DATA_DIR_ENV,
    DATASETS,
    DataNotFoundError,
    check_sizes,
    load_raw,
    make_splits,
    resolve_data_dir,
)
from rlsched.env.lr_control import EnvConfig

# Official label facts, to prove the real files (not some stand-in) were read.
FIRST_LABELS = {
    "fashion_mnist": ([9, 0, 0, 3, 0], [9, 2, 1, 1, 6]),
    "mnist": ([5, 0, 4, 1, 9], [7, 2, 1, 0, 4]),
}
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def listing(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every path under root with (size, mtime_ns, mode): any write, new file or chmod changes it."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


@pytest.fixture(scope="module", autouse=True)
def shared_snapshot(data_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Taken before this module's first test; compared by the module's last test."""
    return listing(data_dir)


# ----- real data --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["fashion_mnist", "mnist"])
def test_real_data_loads_with_config_key(data_dir, name):
    x_tr, y_tr, x_te, y_te = load_raw(name, data_dir)
    assert x_tr.shape == (60000, 1, 28, 28) and x_tr.dtype == torch.uint8
    assert x_te.shape == (10000, 1, 28, 28) and y_te.shape == (10000,)
    assert y_tr.dtype == torch.int64
    assert y_tr[:5].tolist() == FIRST_LABELS[name][0] and y_te[:5].tolist() == FIRST_LABELS[name][1]
    counts = y_tr.bincount(minlength=10).tolist()
    assert counts == ([6000] * 10 if name == "fashion_mnist" else MNIST_TRAIN_COUNTS)

    s = make_splits(name, split_seed=0, data_dir=data_dir)
    assert s.train_size == 50000 and s.x_val.shape == (10000, 1, 28, 28) and len(s.y_val) == 10000
    assert s.x_test.shape == (10000, 1, 28, 28)
    assert s.x_pool.shape == (60000, 1, 28, 28) and s.x_pool.dtype == torch.float32
    # The declared normalization constants make the training pool standard.
    assert abs(s.x_pool.mean().item()) < 0.01
    assert abs(s.x_pool.std().item() - 1.0) < 0.01
    assert s.x_probe.shape[0] == 1000 and torch.equal(s.x_probe, s.x_val[:1000])


def test_env_var_is_used_and_config_key_wins(data_dir, tmp_path, monkeypatch):
    # Empty caches force a real read through the variable, not a cache hit from another test.
    monkeypatch.setattr(data, "_RAW_CACHE", {})
    monkeypatch.setattr(data, "_NORM_CACHE", {})
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    assert resolve_data_dir(None) == (Path(data_dir), False)
    assert resolve_data_dir("") == (Path(data_dir), False)
    via_env = make_splits("fashion_mnist", split_seed=3, data_dir=None, train_size=100)
    via_key = make_splits("fashion_mnist", split_seed=3, data_dir=data_dir, train_size=100)
    assert torch.equal(via_env.x_pool, via_key.x_pool) and torch.equal(via_env.train_idx, via_key.train_idx)
    env = gym.make(
        ENV_ID, model="mlp", train_size=200, val_size=100, val_probe=50, test_size=100, batch_size=50, episode_steps=1
    ).unwrapped
    assert env.reset(seed=0)[1]["val_loss"] > 0
    # An explicit config key takes precedence over the variable, in both directions.
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    make_splits("fashion_mnist", split_seed=3, data_dir=data_dir, train_size=100)
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    with pytest.raises(DataNotFoundError):
        make_splits("fashion_mnist", split_seed=3, data_dir=tmp_path)


def test_split_is_seeded(data_dir):
    a = make_splits("fashion_mnist", split_seed=1, data_dir=data_dir)
    b = make_splits("fashion_mnist", split_seed=1, data_dir=data_dir)
    c = make_splits("fashion_mnist", split_seed=2, data_dir=data_dir)
    assert torch.equal(a.train_idx, b.train_idx) and torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.train_idx, c.train_idx) and not torch.equal(a.y_val, c.y_val)


def test_validation_is_exactly_the_rest_of_the_pool(data_dir):
    s = make_splits("fashion_mnist", split_seed=4, data_dir=data_dir)
    train = s.train_idx.tolist()
    assert len(set(train)) == len(train) == 50000
    rest = sorted(set(range(60000)) - set(train))
    assert len(rest) == 10000

    # The val split holds no ids, only copies, so compare it as a multiset of rows with the pool rows that
    # are not training rows (rows, not ids: Fashion-MNIST has duplicate images, which a multiset handles).
    def rows(x: torch.Tensor, y: torch.Tensor) -> collections.Counter:
        return collections.Counter(xi.tobytes() + bytes([yi]) for xi, yi in zip(x.numpy(), y.tolist(), strict=True))

    assert rows(s.x_val, s.y_val) == rows(s.x_pool[rest], s.y_pool[rest])


def test_subsets_are_prefixes_and_test_set_untouched(data_dir):
    full = make_splits("fashion_mnist", split_seed=5, data_dir=data_dir)
    sub = make_splits(
        "fashion_mnist", split_seed=5, data_dir=data_dir, train_size=1000, val_size=300, val_probe=100, test_size=200
    )
    other = make_splits("fashion_mnist", split_seed=6, data_dir=data_dir)
    assert torch.equal(sub.train_idx, full.train_idx[:1000])
    assert torch.equal(sub.x_val, full.x_val[:300]) and torch.equal(sub.x_probe, full.x_val[:100])
    _, _, x_te, y_te = load_raw("fashion_mnist", data_dir)
    spec = DATASETS["fashion_mnist"]
    expected = (x_te.float() / 255.0 - spec.mean[0]) / spec.std[0]
    # The official test set, in its official order, whatever the split seed.
    for s in (full, other):
        torch.testing.assert_close(s.x_test, expected, rtol=0, atol=1e-6)
        assert torch.equal(s.y_test, y_te)
    assert torch.equal(sub.x_test, full.x_test[:200])


def test_missing_data_names_both_settings(tmp_path):
    with pytest.raises(DataNotFoundError) as err:
        make_splits("fashion_mnist", split_seed=0, data_dir=tmp_path)
    assert DATA_DIR_ENV in str(err.value) and "env.data_dir" in str(err.value)
    with pytest.raises(DataNotFoundError, match=DATA_DIR_ENV):
        gym.make(ENV_ID, model="mlp", data_dir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []  # a root the user named is never downloaded into


def test_sizes_above_a_split_raise_naming_the_maximum(data_dir):
    # A silent clamp ran train_size=100000 on 50k images while the task key said N100000.
    with pytest.raises(ValueError, match=r"train_size=100000 exceeds the fashion_mnist training split \(50000\)"):
        check_sizes("fashion_mnist", 100_000, None, 100, None)
    with pytest.raises(ValueError, match=r"test_size=20000 exceeds the mnist test set \(10000\); use at most 10000"):
        check_sizes("mnist", None, None, 100, 20_000)
    with pytest.raises(ValueError, match=r"train_size=45001 exceeds the cifar10 training split \(45000\)"):
        check_sizes("cifar10", 45_001, None, 100, None)
    with pytest.raises(ValueError, match=r"val_size=10001 exceeds"):
        check_sizes("fashion_mnist", None, 10_001, 100, None)
    with pytest.raises(ValueError, match="train_size=100000 exceeds"):
        EnvConfig.from_kwargs(model="mlp", train_size=100_000)
    # The whole splits, named exactly, are allowed and are what runs.
    check_sizes("fashion_mnist", 50_000, 10_000, 2000, 10_000)
    s = make_splits("fashion_mnist", split_seed=0, data_dir=data_dir, train_size=50_000, test_size=10_000)
    assert s.train_size == 50_000 and len(s.y_test) == 10_000


# ----- CIFAR-10 in its own pickle layout --------------------------------------------------------------------
class _Py2Str(bytes):
    """A Python 2 `str`, as in the real CIFAR-10 files (pickled by Python 2): read back as `str` under
    encoding="latin1" (torchvision) and as `bytes` under encoding="bytes" (the dataset page's snippet)."""


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler, whose dispatch table can be extended
    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2str(self, obj: _Py2Str) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + bytes(obj))
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + bytes(obj))
        self.memoize(obj)

    dispatch[_Py2Str] = save_py2str


def _dump(obj, path: Path) -> None:
    with open(path, "wb") as f:
        _Py2Pickler(f, protocol=2).dump(obj)


CIFAR_PER_BATCH = 20
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(scope="module")
def tiny_cifar(tmp_path_factory) -> tuple[Path, np.ndarray, list[int], np.ndarray, list[int]]:
    """(root, train rows N x 3072, train labels, test rows, test labels) of a 5 x 20 + 20 image CIFAR-10."""
    root = tmp_path_factory.mktemp("cifar")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    train_rows, train_labels = [], []
    for i in range(1, 7):
        rows = rng.integers(0, 256, size=(CIFAR_PER_BATCH, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=CIFAR_PER_BATCH)]
        name = f"data_batch_{i}" if i <= 5 else "test_batch"
        _dump(
            {
                _Py2Str(b"batch_label"): _Py2Str(f"{name} of 6".encode()),
                _Py2Str(b"labels"): labels,
                _Py2Str(b"data"): rows,
                _Py2Str(b"filenames"): [_Py2Str(f"img_{i}_{j}.png".encode()) for j in range(CIFAR_PER_BATCH)],
            },
            folder / name,
        )
        if i <= 5:
            train_rows.append(rows)
            train_labels += labels
        else:
            test_rows, test_labels = rows, labels
    _dump(
        {
            _Py2Str(b"num_cases_per_batch"): CIFAR_PER_BATCH,
            _Py2Str(b"label_names"): [_Py2Str(n.encode()) for n in CIFAR_NAMES],
            _Py2Str(b"num_vis"): 3072,
        },
        folder / "batches.meta",
    )
    return root, np.concatenate(train_rows), train_labels, test_rows, test_labels


def test_tiny_cifar_file_reads_like_the_real_one(tiny_cifar):
    root, train_rows, train_labels, _, _ = tiny_cifar
    with open(root / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        as_bytes = pickle.load(f, encoding="bytes")
    assert set(as_bytes) == {b"batch_label", b"labels", b"data", b"filenames"}
    np.testing.assert_array_equal(as_bytes[b"data"], train_rows[:CIFAR_PER_BATCH])
    assert as_bytes[b"labels"] == train_labels[:CIFAR_PER_BATCH]


def test_cifar10_decodes_pixels_and_labels(tiny_cifar):
    root, train_rows, train_labels, test_rows, test_labels = tiny_cifar
    x_tr, y_tr, x_te, y_te = load_raw("cifar10", root, verify_checksums=False)
    assert x_tr.shape == (100, 3, 32, 32) and x_te.shape == (20, 3, 32, 32) and x_tr.dtype == torch.uint8
    assert y_tr.tolist() == train_labels and y_te.tolist() == test_labels
    # Row layout: 1024 red values, then green, then blue, each plane row-major (row h, column w).
    i, c, h, w = 37, 1, 5, 29
    assert x_tr[i, c, h, w].item() == train_rows[i, c * 1024 + h * 32 + w]
    assert x_tr[i, 2, 0, 1].item() == train_rows[i, 2 * 1024 + 1]
    np.testing.assert_array_equal(x_tr.numpy(), train_rows.reshape(100, 3, 32, 32))
    np.testing.assert_array_equal(x_te.numpy(), test_rows.reshape(20, 3, 32, 32))

    s = make_splits("cifar10", split_seed=0, data_dir=root, verify_checksums=False, val_probe=10)
    assert s.train_size == 50 and s.x_val.shape == (50, 3, 32, 32)  # val split min(5000, n // 2)
    assert s.x_test.shape == (20, 3, 32, 32)
    spec = DATASETS["cifar10"]
    want = (test_rows[3, 2 * 1024 + 7 * 32 + 9] / 255.0 - spec.mean[2]) / spec.std[2]
    assert s.x_test[3, 2, 7, 9].item() == pytest.approx(want, abs=1e-6)


def test_sizes_above_the_files_on_disk_raise(tiny_cifar):
    # Copies smaller than the official sets (here 100 + 20 images) are checked against what was loaded.
    root = tiny_cifar[0]
    kw = {"split_seed": 0, "data_dir": root, "verify_checksums": False, "val_probe": 10}
    with pytest.raises(ValueError, match=r"train_size=51 exceeds the cifar10 training split under .* \(50\)"):
        make_splits("cifar10", train_size=51, **kw)
    with pytest.raises(ValueError, match=r"test_size=21 exceeds the cifar10 test set under .* \(20\)"):
        make_splits("cifar10", test_size=21, **kw)
    with pytest.raises(ValueError, match=r"val_probe=60 exceeds the validation split \(50\)"):
        make_splits("cifar10", **{**kw, "val_probe": 60})
    assert make_splits("cifar10", train_size=50, test_size=20, **kw).train_size == 50


def test_cifar10_checksums_reject_the_tiny_file(tiny_cifar):
    root = tiny_cifar[0]
    with pytest.raises((DataNotFoundError, RuntimeError), match="corrupted"):
        load_raw("cifar10", root, verify_checksums=True)


def test_env_runs_on_tiny_cifar10(tiny_cifar):
    env = gym.make(
        ENV_ID,
        dataset="cifar10",
        model="cnn",
        data_dir=str(tiny_cifar[0]),
        verify_checksums=False,
        val_probe=20,
        batch_size=10,
        episode_steps=2,
    ).unwrapped
    assert env._splits.train_size == 50
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for _ in range(2):
        obs, r, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        assert env.observation_space.contains(obs) and np.isfinite(r)
    assert terminated and not truncated and info["test_loss"] > 0


# ----- must stay last: nothing above wrote into the shared folder -------------------------------------------
def test_shared_data_dir_untouched(data_dir, shared_snapshot):
    assert listing(data_dir) == shared_snapshot
