"""The tiny task the tests run (an MLP on 2k Fashion-MNIST images: an episode takes milliseconds), defined once for
conftest's `tiny_env_kwargs` fixture and, as Hydra overrides, for the entry-point tests."""

from __future__ import annotations

from typing import Any

TINY_ENV: dict[str, Any] = {
    "model": "mlp",
    "train_size": 2000,
    "val_size": 500,
    "val_probe": 200,
    "test_size": 500,
    "batch_size": 100,
    "episode_steps": 5,
    "eval_batch_size": 1000,
}


def hydra_env(**changes: Any) -> list[str]:
    """TINY_ENV (with `changes`) as `env.<key>=<value>` overrides; the model comes from the `model=mlp` group."""
    return [f"env.{k}={v}" for k, v in {**TINY_ENV, **changes}.items() if k != "model"]
