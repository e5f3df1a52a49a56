"""Trainee networks: the paper's CNN, a CIFAR-style ResNet of configurable depth, and an MLP.

Each model names the two parameters whose statistics the controller observes (`feature_params`): the
penultimate dense kernel and the output kernel, as in the authors' code. For the ResNet, which has a single
dense layer, the authors used that layer's kernel and bias; we do the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn


class TraineeNet(nn.Module):
    def feature_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate, last) parameters whose mean and variance enter the observation."""
        raise NotImplementedError


class PaperCNN(TraineeNet):
    """conv5x5-32, pool, conv5x5-64, pool, dense 512, dense C (Xu et al.)."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, hidden: int = 512):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc1 = nn.Linear(64 * (image_size // 4) ** 2, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(self.features(x))))

    def feature_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc1.weight, self.fc2.weight


class MLP(TraineeNet):
    """Flatten, then dense ReLU layers (paper: one of 128 units), then the output layer."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, hidden: Sequence[int] = (128,)):
        super().__init__()
        if len(hidden) < 1:
            raise ValueError("mlp needs at least one hidden layer (model.hidden), got []")
        dims = [in_channels * image_size * image_size, *hidden]
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in itertools.pairwise(dims):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def feature_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.body[-2].weight, self.head.weight


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


def resnet_stages(depth: int) -> list[int]:
    """Blocks per stage: 18/34 use the four-stage ImageNet layout, 6n+2 the three-stage CIFAR layout."""
    if depth == 18:
        return [2, 2, 2, 2]
    if depth == 34:
        return [3, 4, 6, 3]
    if depth >= 8 and (depth - 2) % 6 == 0:
        return [(depth - 2) // 6] * 3
    raise ValueError(f"resnet depth must be 18, 34 or 6n+2 (8, 14, 20, 32, 44, 56, ...), got {depth}")


class ResNet(TraineeNet):
    """CIFAR-style ResNet: 3x3 stem without max-pool, basic blocks, global average pool, one dense layer."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, depth: int = 20, width: int = 16):
        super().__init__()
        stages = resnet_stages(depth)
        if width < 1:
            raise ValueError(f"resnet width must be >= 1, got {width}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        blocks: list[nn.Module] = []
        cin = width
        for i, n in enumerate(stages):
            cout = width * 2**i
            for j in range(n):
                blocks.append(_BasicBlock(cin, cout, 2 if (j == 0 and i > 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))

    def feature_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc.weight, self.fc.bias


MODELS = {"cnn": PaperCNN, "mlp": MLP, "resnet": ResNet}


def build_model(name: str, in_channels: int, image_size: int, num_classes: int, **kwargs) -> TraineeNet:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; allowed: {sorted(MODELS)}")
    try:
        return MODELS[name](in_channels, image_size, num_classes, **kwargs)
    except TypeError as err:
        raise ValueError(f"bad model_kwargs for {name!r}: {err}") from err


# adam/sgd: torch's own. The others are what practitioners run without tuning a schedule (AlgoPerf's self-tuning
# track): schedule-free AdamW (Defazio et al. 2024), Prodigy and D-Adaptation Adam (step-size estimators whose
# `lr` is a multiplier of the estimated step, 1.0 by default). Each at its package's defaults but the rate.
OPTIMIZERS = ("adam", "sgd", "schedulefree_adamw", "prodigy", "dadapt_adam")
# The rate each package documents as its default (the zero-tuning baselines run each at it).
PUBLISHED_DEFAULT_LR = {"adam": 1e-3, "sgd": 1e-3, "schedulefree_adamw": 0.0025, "prodigy": 1.0, "dadapt_adam": 1.0}


def build_optimizer(name: str, params, lr: float, momentum: float = 0.9, weight_decay: float = 0.0):
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "schedulefree_adamw":
        import schedulefree

        opt = schedulefree.AdamWScheduleFree(params, lr=lr, weight_decay=weight_decay)
        opt.train()  # schedule-free optimizers start in neither mode; training needs train()
        return opt
    if name == "prodigy":
        import prodigyopt

        return prodigyopt.Prodigy(params, lr=lr, weight_decay=weight_decay)
    if name == "dadapt_adam":
        import dadaptation

        return dadaptation.DAdaptAdam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; allowed: {list(OPTIMIZERS)}")


def has_eval_mode(opt: torch.optim.Optimizer) -> bool:
    """Schedule-free optimizers train on one sequence of weights and evaluate another (the average): they need
    `opt.eval()` before every evaluation and `opt.train()` before training again."""
    return callable(getattr(opt, "eval", None)) and callable(getattr(opt, "train", None))
