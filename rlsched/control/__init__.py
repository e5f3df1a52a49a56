"""Learning-rate controllers: the shared interface and the hand-designed baselines."""

from rlsched.control.base import Controller
from rlsched.control.baselines import (
    BASELINES,
    ConstantLR,
    Cosine,
    Exponential,
    OneCycle,
    Plateau,
    StepDecay,
    WarmupCosine,
    make_controller,
)

__all__ = [
    "BASELINES",
    "ConstantLR",
    "Controller",
    "Cosine",
    "Exponential",
    "OneCycle",
    "Plateau",
    "StepDecay",
    "WarmupCosine",
    "make_controller",
]
