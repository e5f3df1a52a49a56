"""A learned LR schedule in your own training loop: `rlsched.LearnedLR` beside ReduceLROnPlateau and OneCycleLR.

Trains a torchvision model the controller never saw on Fashion-MNIST three times (same initialization, same
batches), once per schedule, prints final validation and test loss and accuracy, and saves the LR curves.

    RLSCHED_DATA_DIR=/path/to/data python examples/learned_lr_torchvision.py [--artifact DIR] [--epochs 3]

The data root holds FashionMNIST/ in torchvision's layout (RLSCHED_DATA_DIR or --data-dir; with neither, it is
downloaded into ~/.cache/rlsched/data). The model is `torchvision.ops.MLP` (784-256-128-10 with BatchNorm), not
a torchvision CNN: on a laptop CPU a MobileNetV3-small at 28 px takes minutes per epoch, this MLP seconds, and
it still differs from the controller's training trainee (one hidden layer of 128, no normalization).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import rlsched
from rlsched.env.data import load_raw

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST pixel statistics
VAL_SIZE, PROBE_SIZE = 10_000, 1_000  # validation split carved out of the 60k training images; the probe is its head
LR = 0.01  # the controller's starting LR, and the tuned LR of both baselines on this task (conf/tuned/)


def load_data(data_dir: str | None, seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Normalized train / validation / test tensors (a seeded 50k/10k split of the official training set)."""
    x_tr, y_tr, x_te, y_te = load_raw("fashion_mnist", data_dir)

    def norm(x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255.0 - MEAN) / STD

    perm = torch.randperm(len(y_tr), generator=torch.Generator().manual_seed(seed))
    val, train = perm[:VAL_SIZE], perm[VAL_SIZE:]
    return {
        "train": (norm(x_tr[train]), y_tr[train]),
        "val": (norm(x_tr[val]), y_tr[val]),
        "test": (norm(x_te), y_te),
    }


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), torchvision.ops.MLP(784, [256, 128, 10], norm_layer=nn.BatchNorm1d))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    logits = torch.cat([model(x[i : i + 2000]) for i in range(0, len(x), 2000)])
    return F.cross_entropy(logits, y).item(), (logits.argmax(1) == y).float().mean().item()


def train(schedule: str, data: dict, args: argparse.Namespace) -> dict:
    """One run; returns the LR of every optimizer step and the final metrics."""
    model = make_model(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    x, y = data["train"]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y),
        batch_size=args.batch_size,
        shuffle=True,
        drop_last=True,  # every batch the same size: the controller compares consecutive batches' predictions
        generator=torch.Generator().manual_seed(args.seed),
    )
    total = args.epochs * len(loader)
    x_probe, y_probe = data["val"][0][:PROBE_SIZE], data["val"][1][:PROBE_SIZE]
    k = args.every  # baselines that watch the probe look at it as often as the controller does

    def probe_loss() -> float:
        loss = evaluate(model, x_probe, y_probe)[0]
        model.train()
        return loss

    after_step: Callable[[int, torch.Tensor, torch.Tensor], None]
    if schedule == "learned":
        sched = rlsched.LearnedLR(
            opt,
            args.artifact,
            model=model,  # observes the weights of its last two nn.Linear
            probe=(x_probe, y_probe),
            initial_batch=(x[: args.batch_size], y[: args.batch_size]),
            total_steps=total,
        )
        k = sched.steps_per_action

        def after_step(n, loss, logits):
            sched.step(loss, logits)

    elif schedule == "plateau":
        # The tuned setting for this task (conf/tuned/fashion_mnist_mlp_adam_T30_K5_B1000_Nall_8dcc6731.yaml), fed the
        # probe loss every k optimizer steps.
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=1)

        def after_step(n, loss, logits):
            if (n + 1) % k == 0:
                plateau.step(probe_loss())

    elif schedule == "one_cycle":
        one_cycle = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=LR, total_steps=total, pct_start=0.3, div_factor=10.0, final_div_factor=100.0
        )

        def after_step(n, loss, logits):
            if n + 1 < total:  # OneCycleLR refuses a step past its length
                one_cycle.step()

    else:
        raise ValueError(f"unknown schedule {schedule!r}")

    lrs, n, start = [], 0, time.perf_counter()
    model.train()
    for _ in range(args.epochs):
        for xb, yb in loader:
            lrs.append(opt.param_groups[0]["lr"])
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            after_step(n, loss, logits)
            n += 1
    seconds = time.perf_counter() - start
    val_loss, val_acc = evaluate(model, *data["val"])
    test_loss, test_acc = evaluate(model, *data["test"])
    metrics = {"val_loss": val_loss, "val_acc": val_acc, "test_loss": test_loss, "test_acc": test_acc}
    return {"lrs": lrs, "seconds": seconds, **metrics}


def plot(results: dict[str, dict], out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, r in results.items():
        ax.plot(r["lrs"], label=name)
    ax.set(xlabel="optimizer step", ylabel="learning rate", yscale="log", title="LR schedules, Fashion-MNIST")
    ax.legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--artifact", default=str(REPO / "docs/results/demo_controller"), help="controller folder")
    p.add_argument("--data-dir", default=None, help="torchvision data root (default: $RLSCHED_DATA_DIR)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--every", type=int, default=5, help="optimizer steps between ReduceLROnPlateau's probe checks")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--out", type=Path, default=Path("learned_lr_torchvision.png"), help="where the LR plot goes")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_data(args.data_dir, args.seed)
    results = {name: train(name, data, args) for name in ("learned", "plateau", "one_cycle")}
    print(f"{'schedule':<10} {'final LR':>9} {'val loss':>9} {'val acc':>8} {'test loss':>9} {'test acc':>8} {'s':>5}")
    for name, r in results.items():
        print(
            f"{name:<10} {r['lrs'][-1]:>9.2e} {r['val_loss']:>9.4f} {r['val_acc']:>8.4f} {r['test_loss']:>9.4f} "
            f"{r['test_acc']:>8.4f} {r['seconds']:>5.1f}"
        )
    plot(results, args.out)
    print(f"LR plot: {args.out}")


if __name__ == "__main__":
    main()
