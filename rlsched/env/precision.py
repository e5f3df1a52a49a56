"""Numeric precision of a trainee's forward and backward passes: exact fp32 by default, tf32 or bf16 on request.

`fp32`: full float32 everywhere (reproducible; the default). `tf32`: float32 storage, TensorFloat-32 matrix
products and convolutions on Ampere-or-later GPUs (a no-op on the CPU). `bf16`: autocast to bfloat16 for the
matrix work, float32 weights, optimizer state and losses. The flags are set only inside `precision_scope`, so
envs of different precisions can share a process.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

PRECISIONS = ("fp32", "tf32", "bf16")


@contextlib.contextmanager
def precision_scope(precision: str | None, device: torch.device) -> Iterator[None]:
    """Run the enclosed passes at `precision` (None: fp32) on `device`."""
    if precision in (None, "fp32"):
        yield
        return
    if precision == "tf32":
        matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
        return
    if precision == "bf16":
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
            yield
        return
    raise ValueError(f"unknown precision {precision!r}; allowed: {list(PRECISIONS)}")


def default_eval_chunk(model: str, device: str) -> int:
    """Images per evaluation call where the config leaves eval_batch_size null: on the CPU the convolutional
    models' activations must stay in cache (issue 8: the CNN's env step took 0.61 s at 2000, 0.38 s at 256, 0.39 s
    at 128; measured again on the 2-core CPU at batch 128 with a 1,280-image probe, interleaved: 0.36 s at 128
    against 0.51 s at 256), the MLP's are small at 2000. A GPU takes large chunks: a population of N trainees
    splits one chunk among them, and each call costs a fixed launch overhead (the MLP's 262,144 images are 0.8 GB
    of inputs)."""
    gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if gpu:
        return 262_144 if model == "mlp" else 16_384
    return 2000 if model == "mlp" else 128
