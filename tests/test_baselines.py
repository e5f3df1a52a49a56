"""Baseline controllers against torch's schedulers and their closed forms, driven through a fake env."""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler

from rlsched.bench.harness import run_episode
from rlsched.control import (
    BASELINES,
    ConstantLR,
    Controller,
    Cosine,
    Exponential,
    OneCycle,
    Plateau,
    StepDecay,
    WarmupCosine,
    make_controller,
)

OBS = np.zeros(9, dtype=np.float32)


@dataclass
class FakeCfg:
    episode_steps: int = 50
    initial_lr: float = 0.01


@dataclass
class FakeEnv:
    """Only the attributes the baselines read; no training happens."""

    cfg: FakeCfg = field(default_factory=FakeCfg)
    steps_per_epoch: float = 7.0


def run(
    ctrl: Controller, n: int, env: FakeEnv | None = None, metrics: list[float] | None = None, key: str = "val_loss"
) -> list[float]:
    """The LRs the controller chooses for n env steps; metrics[t] is the value step t reports."""
    env = env or FakeEnv()
    ctrl.reset(env, OBS, {key: float("nan")})  # the reset info is never fed to a scheduler
    lrs, info = [], {}
    for t in range(n):
        lrs.append(ctrl.act(OBS, info))
        info = {key: metrics[t] if metrics else 1.0, "step": t + 1}
    return lrs


def torch_plateau(metrics: list[float], lr0: float, **kw) -> list[float]:
    """The LR before each step when ReduceLROnPlateau is stepped by hand after each step's metric."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = lr_scheduler.ReduceLROnPlateau(opt, **kw)
    lrs = []
    for m in metrics:
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(m)
    return lrs


def assert_rel(actual: list[float], expected: list[float], rtol: float = 1e-12) -> None:
    assert len(actual) == len(expected)
    for t, (a, e) in enumerate(zip(actual, expected, strict=True)):
        assert abs(a - e) <= rtol * abs(e), (t, a, e)


# ----- (a) Plateau == hand-driven ReduceLROnPlateau --------------------------------------------------------
rng = np.random.default_rng(0)
FLAT = [1.0] * 40
DESCENT_THEN_FLAT = [1.0 - 0.05 * t for t in range(10)] + [0.55] * 30
NOISY = list(1.0 + 0.05 * rng.standard_normal(60))
NOISY_DESCENT = list(np.linspace(2.0, 0.5, 60) + 0.1 * rng.standard_normal(60))
# Improvements of 5e-5 relative are below the default rel threshold 1e-4, so they count as no improvement.
TINY_REL = [1.0 * (1 - 5e-5) ** t for t in range(40)]
# Steps of 0.002 are below an abs threshold of 0.005 but above 1e-4 relative.
TINY_ABS = [1.0 - 0.002 * t for t in range(40)]
ACC_RISE_THEN_FLAT = [0.5 + 0.02 * t for t in range(15)] + [0.8] * 25
SEQUENCES = {
    "flat": FLAT,
    "descent_then_flat": DESCENT_THEN_FLAT,
    "noisy": NOISY,
    "noisy_descent": NOISY_DESCENT,
    "tiny_rel": TINY_REL,
    "tiny_abs": TINY_ABS,
}
PLATEAU_CASES = [
    {},
    {"patience": 0},
    {"patience": 3, "factor": 0.5},
    {"patience": 2, "cooldown": 4, "factor": 0.5},
    {"patience": 1, "threshold_mode": "abs", "threshold": 0.005},
    {"patience": 1, "threshold": 0.0},
    {"patience": 1, "factor": 0.5, "min_lr": 0.01 * 0.5**3},  # binds after three cuts
    {"patience": 0, "factor": 0.999, "eps": 1e-4},  # each cut is 1e-5 < eps, so none happens
    {"patience": 0, "factor": 0.5, "eps": 0.0, "min_lr": 1e-4},
]


def case_id(kw: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in kw.items()) or "default"


@pytest.mark.parametrize("kw", PLATEAU_CASES, ids=case_id)
@pytest.mark.parametrize("seq", list(SEQUENCES), ids=str)
def test_plateau_matches_torch_min(seq: str, kw: dict) -> None:
    metrics = SEQUENCES[seq]
    got = run(Plateau(0.01, **kw), len(metrics), metrics=metrics)
    assert got == torch_plateau(metrics, 0.01, **kw)


@pytest.mark.parametrize(
    "kw", [{}, {"patience": 2}, {"patience": 1, "cooldown": 3, "threshold_mode": "abs", "threshold": 0.01}]
)
@pytest.mark.parametrize("seq", [ACC_RISE_THEN_FLAT, [1.0 - v for v in NOISY]], ids=["rise_flat", "noisy"])
def test_plateau_matches_torch_max(seq: list[float], kw: dict) -> None:
    ctrl = Plateau(0.01, mode="max", metric="val_accuracy", **kw)
    got = run(ctrl, len(seq), metrics=seq, key="val_accuracy")
    assert got == torch_plateau(seq, 0.01, mode="max", **kw)


def test_plateau_cases_exercise_what_they_claim() -> None:
    # Guards the fixtures: without these properties the comparisons above would prove less.
    default = torch_plateau(FLAT, 0.01, patience=1)
    assert min(default) < 0.01
    bound = run(Plateau(0.01, patience=1, factor=0.5, min_lr=0.01 * 0.5**3), 40, metrics=FLAT)
    assert min(bound) == 0.01 * 0.5**3 and bound[-1] == bound[-10]
    assert set(run(Plateau(0.01, patience=0, factor=0.999, eps=1e-4), 40, metrics=FLAT)) == {0.01}
    assert min(run(Plateau(0.01, patience=1), 40, metrics=TINY_REL)) < 0.01  # sub-threshold gains ignored
    assert set(run(Plateau(0.01, patience=1, threshold=0.0), 40, metrics=TINY_REL)) == {0.01}
    cooled = run(Plateau(0.01, patience=0, cooldown=3, factor=0.5), 12, metrics=FLAT)
    assert cooled == [0.01] * 2 + [0.005] * 4 + [0.0025] * 4 + [0.00125] * 2


def test_plateau_watches_the_metric_of_the_step_just_taken() -> None:
    ctrl = Plateau(0.01, patience=0, factor=0.5)
    ctrl.reset(FakeEnv(), OBS, {"val_loss": 0.1})
    assert ctrl.act(OBS, {"val_loss": 0.1}) == 0.01  # first act: nothing stepped yet
    assert ctrl.act(OBS, {"val_loss": 1.0}) == 0.01  # first metric sets the best
    assert ctrl.act(OBS, {"val_loss": 1.0}) == 0.005
    with pytest.raises(KeyError, match="val_loss"):
        ctrl.act(OBS, {"val_accuracy": 0.3})


# ----- (b), (c) closed forms -------------------------------------------------------------------------------
@pytest.mark.parametrize("gamma,n", [(0.5, 1), (0.9, 7), (0.3, 25), (1.0, 3)])
def test_step_decay_closed_form(gamma: float, n: int) -> None:
    lrs = run(StepDecay(0.05, gamma, n), 200)
    assert_rel(lrs, [0.05 * gamma ** (t // n) for t in range(200)])


@pytest.mark.parametrize("spe,epochs,n_steps", [(7.0, 2, 14), (2.5, 1, 2), (0.3, 1, 1), (12.4, 1.5, 19)])
def test_step_decay_epoch_unit(spe: float, epochs: float, n_steps: int) -> None:
    ctrl = StepDecay(0.05, 0.5, epochs, unit="epoch")
    lrs = run(ctrl, 100, env=FakeEnv(steps_per_epoch=spe))
    assert ctrl.step_size_steps == n_steps
    assert_rel(lrs, [0.05 * 0.5 ** (t // n_steps) for t in range(100)])


def test_keras_example_every_ten_epochs() -> None:
    # Keras LearningRateScheduler example: lr * 0.8 every 10 epochs; here 10 env steps per epoch.
    ctrl = make_controller("step_decay", lr=0.01, gamma=0.8, step_size=10, unit="epoch")
    lrs = run(ctrl, 350, env=FakeEnv(steps_per_epoch=10.0))
    assert_rel(lrs, [0.01 * 0.8 ** (t // 100) for t in range(350)])
    assert lrs[99] == 0.01 and lrs[100] == pytest.approx(0.008) and lrs[300] == pytest.approx(0.01 * 0.8**3)


@pytest.mark.parametrize("gamma", [0.99, 0.9, 0.5, 1.0])
def test_exponential_closed_form(gamma: float) -> None:
    assert_rel(run(Exponential(0.03, gamma), 300), [0.03 * gamma**t for t in range(300)])


@pytest.mark.parametrize("eta_min,t_max,steps", [(0.0, None, 50), (1e-4, None, 200), (1e-3, 30, 30), (0.0, 17, 17)])
def test_cosine_closed_form(eta_min: float, t_max: int | None, steps: int) -> None:
    env = FakeEnv(cfg=FakeCfg(episode_steps=steps))
    lr0, big_t = 0.1, t_max or steps
    expected = [eta_min + (lr0 - eta_min) * (1 + math.cos(math.pi * t / big_t)) / 2 for t in range(steps)]
    assert_rel(run(Cosine(lr0, eta_min=eta_min, t_max=t_max), steps, env=env), expected)


def test_constant() -> None:
    assert run(ConstantLR(0.02), 30) == [0.02] * 30


def test_no_torch_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for ctrl in (ConstantLR(0.1), StepDecay(0.1, 0.5, 2), Exponential(0.1, 0.9), Cosine(0.1)):
            run(ctrl, 5)
        run(Plateau(0.1, patience=0), 5)
        run(OneCycle(0.1), 50)
        run(WarmupCosine(0.1, warmup_frac=0.2), 50)


# ----- (d) validation ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: ConstantLR(0.0), "lr must be > 0"),
        (lambda: ConstantLR(-1e-3), "lr must be > 0"),
        (lambda: ConstantLR(float("nan")), "lr must be > 0"),
        (lambda: StepDecay(0.1, 0.0, 5), r"gamma must be in \(0, 1\]"),
        (lambda: StepDecay(0.1, 1.5, 5), r"gamma must be in \(0, 1\]"),
        (lambda: Exponential(0.1, -0.5), r"gamma must be in \(0, 1\]"),
        (lambda: StepDecay(0.1, 0.5, 0), "step_size must be an integer >= 1"),
        (lambda: StepDecay(0.1, 0.5, 2.5), "step_size must be an integer >= 1"),
        (lambda: StepDecay(0.1, 0.5, 0.5, unit="epoch"), "step_size must be >= 1 epoch"),
        (lambda: StepDecay(0.1, 0.5, 5, unit="day"), r"unknown unit 'day'; allowed: \['step', 'epoch'\]"),
        (lambda: Cosine(0.1, eta_min=-1e-3), "eta_min must be >= 0"),
        (lambda: Cosine(0.1, t_max=0), "t_max must be an integer >= 1"),
        (lambda: Plateau(0.1, factor=1.0), r"factor must be in \(0, 1\)"),
        (lambda: Plateau(0.1, factor=0.0), r"factor must be in \(0, 1\)"),
        (lambda: Plateau(0.1, patience=-1), "patience must be an integer >= 0"),
        (lambda: Plateau(0.1, cooldown=-2), "cooldown must be an integer >= 0"),
        (lambda: Plateau(0.1, mode="up"), r"unknown mode 'up'; allowed: \['min', 'max'\]"),
        (lambda: Plateau(0.1, threshold_mode="pct"), r"unknown threshold_mode 'pct'; allowed: \['rel', 'abs'\]"),
        (lambda: Plateau(0.1, min_lr=-1e-6), "min_lr must be >= 0"),
        (lambda: Plateau(0.1, eps=-1.0), "eps must be >= 0"),
        (lambda: Plateau(0.1, threshold=-1e-4), "threshold must be >= 0"),
        (lambda: Plateau(0.1, metric="test_loss"), "unknown metric 'test_loss'"),
        (lambda: Plateau(0.1, mode="max"), "metric 'val_loss' needs mode='min'"),
        (lambda: Plateau(0.1, metric="val_accuracy"), "metric 'val_accuracy' needs mode='max'"),
        (lambda: OneCycle(0.0), "lr must be > 0"),
        (lambda: OneCycle(0.1, pct_start=0.0), r"pct_start must be in \(0, 1\)"),
        (lambda: OneCycle(0.1, pct_start=1.0), r"pct_start must be in \(0, 1\)"),
        (lambda: OneCycle(0.1, anneal_strategy="exp"), r"unknown anneal_strategy 'exp'; allowed: \['cos', 'linear'\]"),
        (lambda: OneCycle(0.1, div_factor=0.5), "div_factor must be >= 1"),
        (lambda: OneCycle(0.1, final_div_factor=0.0), "final_div_factor must be >= 1"),
        (lambda: WarmupCosine(0.1), "give exactly one of warmup_frac .* and warmup_steps"),
        (lambda: WarmupCosine(0.1, warmup_frac=0.2, warmup_steps=3), "give exactly one of warmup_frac"),
        (lambda: WarmupCosine(0.1, warmup_frac=0.0), r"warmup_frac must be in \(0, 1\)"),
        (lambda: WarmupCosine(0.1, warmup_frac=1.0), r"warmup_frac must be in \(0, 1\)"),
        (lambda: WarmupCosine(0.1, warmup_steps=0), "warmup_steps must be an integer >= 1"),
        (lambda: WarmupCosine(0.1, warmup_steps=2.5), "warmup_steps must be an integer >= 1"),
        (lambda: WarmupCosine(0.1, warmup_frac=0.2, start_factor=0.0), r"start_factor must be in \(0, 1\]"),
        (lambda: WarmupCosine(0.1, warmup_frac=0.2, start_factor=1.5), r"start_factor must be in \(0, 1\]"),
        (lambda: WarmupCosine(0.1, warmup_frac=0.2, eta_min=-1e-3), "eta_min must be >= 0"),
        (lambda: WarmupCosine(0.1, warmup_frac=0.2, eta_min=0.1), "eta_min must be < lr"),
    ],
)
def test_bad_input(build, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()


def test_factory() -> None:
    assert sorted(BASELINES) == [
        "constant",
        "cosine",
        "exponential",
        "one_cycle",
        "plateau",
        "step_decay",
        "warmup_cosine",
    ]
    ctrl = make_controller("plateau", lr=0.1, patience=3)
    assert isinstance(ctrl, Plateau) and ctrl.name == "plateau" and ctrl.patience == 3 and ctrl.sets_lr
    assert make_controller("cosine", name="cos-tuned", lr=0.1).name == "cos-tuned"
    with pytest.raises(ValueError, match=r"unknown controller 'sgdr'; allowed: \['constant', 'cosine'"):
        make_controller("sgdr", lr=0.1)
    accepted = r"accepted: \['lr', 'gamma', 'step_size', 'unit'\]"
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['step'\].*" + accepted):
        make_controller("step_decay", lr=0.1, gamma=0.5, step=3)
    with pytest.raises(ValueError, match=r"needs parameter\(s\) \['gamma'\]"):
        make_controller("exponential", lr=0.1)


def test_act_before_reset() -> None:
    with pytest.raises(RuntimeError, match="reset"):
        ConstantLR(0.1).act(OBS, {})


# ----- (e) reset restarts the schedule ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "ctrl",
    [StepDecay(0.1, 0.5, 3), Exponential(0.1, 0.9), Cosine(0.1), Plateau(0.1, patience=1, factor=0.5)],
    ids=lambda c: c.name,
)
def test_reset_restarts_from_lr0(ctrl: Controller) -> None:
    metrics = FLAT
    first = run(ctrl, 20, metrics=metrics)
    assert first[0] == 0.1 and first[-1] < 0.1
    assert run(ctrl, 20, metrics=metrics) == first
    # A reset mid-episode also starts over.
    ctrl.reset(FakeEnv(), OBS, {})
    assert ctrl.act(OBS, {"val_loss": 5.0}) == 0.1


# ----- (f) warm-up schedules: one_cycle and warmup_cosine == torch's schedulers driven directly ---------------
def torch_lrs(make_sched, n: int, lr0: float) -> list[float]:
    """The LR before each of n steps when a torch scheduler is stepped once after each step."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr0)
    sched = make_sched(opt)
    lrs = []
    for t in range(n):
        lrs.append(opt.param_groups[0]["lr"])
        if t < n - 1:
            opt.step()
            sched.step()
    return lrs


ONE_CYCLE_CASES = [
    (30, {}),
    (30, {"pct_start": 0.1, "anneal_strategy": "linear"}),
    (30, {"pct_start": 0.5, "div_factor": 3.0, "final_div_factor": 10.0}),
    (7, {"pct_start": 0.4, "div_factor": 1.0}),
    (100, {"pct_start": 0.05, "anneal_strategy": "linear", "final_div_factor": 1.0}),
]


@pytest.mark.parametrize("steps,kw", ONE_CYCLE_CASES, ids=lambda c: case_id(c) if isinstance(c, dict) else str(c))
def test_one_cycle_matches_torch(steps: int, kw: dict) -> None:
    ctrl = OneCycle(0.05, **kw)
    got = run(ctrl, steps, env=FakeEnv(cfg=FakeCfg(episode_steps=steps)))
    expected = torch_lrs(
        lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps, cycle_momentum=False, **kw),
        steps,
        0.05,
    )
    assert got == expected
    assert ctrl.total_steps == steps
    # The last action gets the final LR: max_lr / (div_factor * final_div_factor).
    div, final_div = kw.get("div_factor", 25.0), kw.get("final_div_factor", 1e4)
    assert got[-1] == pytest.approx(0.05 / (div * final_div), rel=1e-9)


WARMUP_COSINE_CASES = [
    (30, {"warmup_frac": 0.2}, 6),
    (30, {"warmup_frac": 0.01}, 1),  # rounds to 0: at least one warm-up action
    (30, {"warmup_frac": 0.99}, 29),  # rounds to 30: at least one cosine action
    (30, {"warmup_steps": 10, "start_factor": 0.5, "eta_min": 1e-3}, 10),
    (5, {"warmup_steps": 2, "start_factor": 1.0}, 2),
]


@pytest.mark.parametrize(
    "steps,kw,warm", WARMUP_COSINE_CASES, ids=lambda c: case_id(c) if isinstance(c, dict) else str(c)
)
def test_warmup_cosine_matches_torch_and_its_closed_form(steps: int, kw: dict, warm: int) -> None:
    ctrl = WarmupCosine(0.05, **kw)
    got = run(ctrl, steps, env=FakeEnv(cfg=FakeCfg(episode_steps=steps)))
    assert ctrl.warmup_steps_used == warm
    sf, eta = kw.get("start_factor", 0.1), kw.get("eta_min", 0.0)

    def direct(opt):
        return lr_scheduler.SequentialLR(
            opt,
            [
                lr_scheduler.LinearLR(opt, start_factor=sf, end_factor=1.0, total_iters=warm),
                lr_scheduler.CosineAnnealingLR(opt, T_max=steps - warm, eta_min=eta),
            ],
            milestones=[warm],
        )

    assert got == torch_lrs(direct, steps, 0.05)
    closed = [
        0.05 * (sf + (1 - sf) * t / warm)
        if t < warm
        else eta + (0.05 - eta) * (1 + math.cos(math.pi * (t - warm) / (steps - warm))) / 2
        for t in range(steps)
    ]
    assert_rel(got, closed, rtol=1e-9)


@pytest.mark.parametrize(
    "ctrl,peak",
    [
        (OneCycle(0.05, pct_start=0.3), 8),  # OneCycleLR peaks at step pct_start*T - 1
        (OneCycle(0.05, pct_start=0.3, anneal_strategy="linear"), 8),
        (WarmupCosine(0.05, warmup_frac=0.3, start_factor=0.1), 9),
    ],
    ids=lambda c: c.name if isinstance(c, Controller) else str(c),
)
def test_warm_up_rises_then_decays(ctrl: Controller, peak: int) -> None:
    lrs = run(ctrl, 30, env=FakeEnv(cfg=FakeCfg(episode_steps=30)))
    assert int(np.argmax(lrs)) == peak and lrs[peak] == pytest.approx(0.05)
    assert all(a < b for a, b in itertools.pairwise(lrs[: peak + 1]))
    assert all(a > b for a, b in itertools.pairwise(lrs[peak:]))
    assert lrs[0] < 0.2 * 0.05 and lrs[-1] < 0.1 * 0.05


@pytest.mark.parametrize("ctrl", [OneCycle(0.05), WarmupCosine(0.05, warmup_frac=0.3)], ids=lambda c: c.name)
def test_warm_up_schedules_never_step_past_the_episode(ctrl: Controller) -> None:
    env = FakeEnv(cfg=FakeCfg(episode_steps=10))
    first = run(ctrl, 10, env=env)
    with pytest.raises(RuntimeError, match=r"built for 10 actions .* asked for action 11"):
        ctrl.act(OBS, {})
    assert run(ctrl, 10, env=env) == first  # reset() starts a fresh schedule
    # Rebuilt for a longer episode, the same controller spans it.
    assert len(run(ctrl, 20, env=FakeEnv(cfg=FakeCfg(episode_steps=20)))) == 20


@pytest.mark.parametrize(
    "ctrl,steps,match",
    [
        (OneCycle(0.05, pct_start=0.1), 10, r"warm-up of 1.00 steps; it must exceed 1 \(use pct_start > 0.1000\)"),
        (OneCycle(0.05, pct_start=0.1), 5, "it must exceed 1"),
        (WarmupCosine(0.05, warmup_steps=10), 10, "warmup_steps=10 leaves no cosine phase .* use warmup_steps <= 9"),
        (WarmupCosine(0.05, warmup_frac=0.5), 1, "needs an episode of at least 2 actions"),
    ],
)
def test_warm_up_schedule_that_does_not_fit_the_episode_fails_at_reset(ctrl: Controller, steps: int, match: str):
    with pytest.raises(ValueError, match=match):
        ctrl.reset(FakeEnv(cfg=FakeCfg(episode_steps=steps)), OBS, {})


@pytest.mark.parametrize(
    "kind,params",
    [
        ("one_cycle", {"pct_start": 0.4, "div_factor": 5.0, "final_div_factor": 10.0}),
        ("warmup_cosine", {"warmup_frac": 0.4, "eta_min": 1e-4}),
    ],
)
def test_warm_up_schedules_drive_a_real_episode(tiny_env_kwargs: dict, kind: str, params: dict) -> None:
    from rlsched.env.lr_control import LRControlEnv

    env = LRControlEnv(**tiny_env_kwargs)  # 5 actions; the env clips LRs to [1e-5, 0.1], which these stay inside
    ctrl = make_controller(kind, lr=0.02, **params)
    lrs = run_episode(env, ctrl, 20_000).curves["lr"].tolist()[1:]  # row 0 is the state before any action
    assert lrs == run(make_controller(kind, lr=0.02, **params), 5, env=FakeEnv(cfg=FakeCfg(episode_steps=5)))
    assert max(lrs) == pytest.approx(0.02) and lrs[0] < 0.02 and lrs[-1] < 0.02
