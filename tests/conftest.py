"""Shared fixtures: the real-data root and the kwargs of a tiny, fast environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tiny import TINY_ENV

from rlsched.env.data import DATA_DIR_ENV

REPO_ROOT = Path(__file__).resolve().parents[1]
FALLBACK_DATA_DIR = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the real data sets (torchvision layout).

    Real-data tests must run, never skip: a CI run in which they silently skipped would look green while
    testing nothing, so a missing root fails the session's data tests loudly instead.
    """
    # The Makefile exports the variable even when the user left it empty, so empty means unset.
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        root = Path(env).expanduser().resolve()
        if not root.is_dir():
            pytest.fail(f"{DATA_DIR_ENV}={env!r} is set but {root} is not a directory")
    elif FALLBACK_DATA_DIR.is_dir():
        root = FALLBACK_DATA_DIR.resolve()
    else:
        pytest.fail(
            f"no real data: set {DATA_DIR_ENV} to a folder holding FashionMNIST/ and MNIST/ in torchvision's "
            f"layout (CI: {DATA_DIR_ENV}=../shared/data); the fallback {FALLBACK_DATA_DIR} does not exist"
        )
    if not (root / "FashionMNIST" / "raw").is_dir():
        pytest.fail(f"{DATA_DIR_ENV} root {root} has no FashionMNIST/raw folder (torchvision layout)")
    return root


@pytest.fixture
def tiny_env_kwargs(data_dir: Path) -> dict:
    """An env small enough that a whole episode takes milliseconds (MLP on 2k Fashion-MNIST images)."""
    return {**TINY_ENV, "data_dir": str(data_dir)}
