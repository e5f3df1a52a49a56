"""The env's `rgb_array` frame: the learning rate and the probe's validation loss against the step so far."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SIZE_IN, DPI = (6.4, 3.2), 100  # 640 x 320 pixels: even sizes, as video encoders want


def episode_image(
    history: Sequence[tuple[int, float, float]], lr_min: float, lr_max: float, episode_steps: int
) -> np.ndarray:
    """(H, W, 3) uint8 frame of `history` [(step, lr, val_loss), ...]. Fixed axes (the whole budget, the LR
    bounds) so that the frames of one episode line up as a video."""
    # A Figure with its own Agg canvas, not pyplot: no global state, no GUI backend, safe in worker processes.
    fig = Figure(figsize=SIZE_IN, dpi=DPI)
    canvas = FigureCanvasAgg(fig)
    ax_lr, ax_loss = fig.subplots(1, 2)
    steps = [h[0] for h in history]
    ax_lr.plot(steps, [h[1] for h in history], color="tab:blue", marker=".")
    ax_lr.set(yscale="log", ylim=(lr_min, lr_max), xlim=(0, episode_steps), xlabel="step", title="learning rate")
    ax_loss.plot(steps, [h[2] for h in history], color="tab:red", marker=".")
    ax_loss.set(xlim=(0, episode_steps), xlabel="step", title="validation loss (probe)")
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
