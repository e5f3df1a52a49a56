"""Every observation feature recomputed by hand, in float64 numpy, from the trainee's weights and data.

The only hook is a recording wrapper around the split's `train_batch`: it keeps each training batch the env
draws together with a copy of the weights at that moment (i.e. before that batch's update), which is exactly
what the training loss and the prediction features are defined on. Everything else is read after each step.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlsched.env import ENV_ID, LRControlEnv
from rlsched.env.features import PAPER_FEATURES, centred_sum_of_squares
from rlsched.env.observer import Observer
from rlsched.env.trainee import Trainee

EPS = 1e-10
DECAY = 0.8


def weights(net: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy().copy() for k, v in net.state_dict().items()}


def mlp_logits(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """The MLP with one hidden layer (Flatten, Linear, ReLU, Linear) in float64."""
    h = np.maximum(x.reshape(len(x), -1) @ w["body.1.weight"].T + w["body.1.bias"], 0.0)
    return h @ w["head.weight"].T + w["head.bias"]


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(z: np.ndarray, y: np.ndarray) -> float:
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(lse - z[np.arange(len(y)), y]))


def log_var(a: np.ndarray) -> float:
    return math.log(np.var(a) + EPS)  # population variance over every element


def ema(prev: float | None, value: float) -> float:
    return value if prev is None else DECAY * prev + (1 - DECAY) * value


@pytest.mark.parametrize(
    ("source", "k"), [("train", 1), ("train", 2), ("validation", 1)], ids=["train-K1", "train-K2", "val-K1"]
)
def test_features_by_hand(tiny_env_kwargs, monkeypatch, source, k):
    env: LRControlEnv = gym.make(
        ENV_ID,
        **{
            **tiny_env_kwargs,
            "model_kwargs": {"hidden": [8]},
            "episode_steps": 3,
            "split_seed": 5,
            "prediction_source": source,
            "steps_per_action": k,
            "features": "paper",
        },
    ).unwrapped
    splits = env._splits
    batches: list[tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]] = []
    draw = splits.train_batch

    def recording_train_batch(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = draw(rows)
        batches.append((x.double().numpy().copy(), y.numpy().copy(), weights(env.trainee.net)))
        return x, y

    # A fixed split_seed keeps this very DataSplits object across reset (no re-split), so the hook stays on.
    monkeypatch.setattr(splits, "train_batch", recording_train_batch)
    x_probe, y_probe = splits.x_probe.double().numpy(), splits.y_probe.numpy()
    num_classes = 10

    obs, info = env.reset(seed=21)
    assert env._splits is splits
    net = env.trainee.net
    penult, last = net.feature_params()
    assert penult is net.body[1].weight and last is net.head.weight
    assert list(env.feature_names) == list(PAPER_FEATURES)

    pred_ema = change_ema = None
    prev_probs = None
    lr = tiny_env_kwargs.get("initial_lr", 0.01)
    actions = [np.array([1.0], np.float32), np.array([-1.0], np.float32), np.array([0.5], np.float32)]
    for t in range(len(actions) + 1):
        if t > 0:
            obs, _, terminated, truncated, info = env.step(actions[t - 1])
            assert not truncated and terminated == (t == len(actions))
            lr *= (0.965 + (float(actions[t - 1][0]) + 1) / 2 * 0.07) ** k  # the multiplier acts per optimizer step
        # This step's training batches: one at reset (the untrained model on the first rows), K per step.
        step_batches = batches[:1] if t == 0 else batches[1 + (t - 1) * k : 1 + t * k]
        assert len(step_batches) == (1 if t == 0 else k)
        assert all(len(y) == tiny_env_kwargs["batch_size"] for _, y, _ in step_batches)
        logits = [mlp_logits(w, x) for x, _, w in step_batches]
        train_loss = np.mean([cross_entropy(z, y) for z, (_, y, _) in zip(logits, step_batches, strict=True)])

        w_now = weights(env.trainee.net)
        val_logits = mlp_logits(w_now, x_probe)
        val_loss = cross_entropy(val_logits, y_probe)
        probs = softmax(logits[-1] if source == "train" else val_logits)
        if prev_probs is None:  # at reset the "previous" predictions are uniform
            prev_probs = np.full_like(probs, 1.0 / num_classes)
            # A constant shift leaves the variance alone, so the two prediction features start equal.
            assert obs[1] == obs[2]
        pred_ema = ema(pred_ema, log_var(probs))
        change_ema = ema(change_ema, log_var(probs - prev_probs))
        prev_probs = probs
        p, q = w_now["body.1.weight"], w_now["head.weight"]
        expected = {
            "val_loss": val_loss,
            "pred_log_var_ema": pred_ema,
            "pred_change_log_var_ema": change_ema,
            "train_loss": train_loss,
            "penult_weight_mean": p.mean(),
            "penult_weight_var": p.var(),
            "last_weight_mean": q.mean(),
            "last_weight_var": q.var(),
            "log10_lr": math.log10(lr),
        }
        want = np.array([expected[f] for f in PAPER_FEATURES])
        np.testing.assert_allclose(obs.astype(np.float64), want, rtol=1e-5, atol=1e-7, err_msg=f"step {t}")
        assert info["val_loss"] == pytest.approx(val_loss, rel=1e-5)
        assert info["train_loss"] == pytest.approx(train_loss, rel=1e-5)
        assert info["lr"] == pytest.approx(lr, rel=1e-12)
        assert info["optimizer_steps"] == t * k
    # Sanity of the recording itself: the weights seen by the first step's batch are the initial weights,
    # and they changed by the last batch (the trainee did train).
    assert all(np.array_equal(batches[0][2][n], batches[1][2][n]) for n in batches[0][2])
    assert not np.array_equal(batches[0][2]["head.weight"], batches[-1][2]["head.weight"])


def test_reset_batch_is_first_training_rows(tiny_env_kwargs):
    """The reset observation's training features use the first `batch_size` rows of the training split."""
    env: LRControlEnv = gym.make(ENV_ID, **{**tiny_env_kwargs, "model_kwargs": {"hidden": [8]}}).unwrapped
    _, info = env.reset(seed=3)
    s = env._splits
    b = tiny_env_kwargs["batch_size"]
    idx = s.train_idx[:b]
    z = mlp_logits(weights(env.trainee.net), s.x_pool[idx].double().numpy())
    assert info["train_loss"] == pytest.approx(cross_entropy(z, s.y_pool[idx].numpy()), rel=1e-5)


@pytest.mark.parametrize("offset", [0.0, 5.0], ids=["centred", "mean-5"])
def test_centred_sum_of_squares_matches_float64(offset):
    """The penultimate-weight statistics' fast path, also where a one-pass formula would lose digits."""
    x = torch.randn(128, 784, generator=torch.Generator().manual_seed(0)) * 0.03 + offset
    mean, ss = centred_sum_of_squares(x)
    want = x.double()
    assert mean.item() == pytest.approx(want.mean().item(), rel=1e-6, abs=1e-9)
    assert ss.item() / x.numel() == pytest.approx(want.var(unbiased=False).item(), rel=1e-5)


def test_observer_outside_the_env_reproduces_its_observations(tiny_env_kwargs):
    """The Observer needs no env: a hand-written loop over a Trainee, feeding it the same signals, gets the env's
    observations bit for bit (what a torch LR scheduler in a user's training loop relies on)."""
    kw = {**tiny_env_kwargs, "split_seed": 5, "steps_per_action": 2}
    env = LRControlEnv(**kw)
    lrs = [0.02, 0.005, 0.01, 0.03, 0.01]
    seen = [env.reset(seed=9)[0]] + [env.step_lr(lr)[0] for lr in lrs]

    # The same run by hand: the env draws (init, order, split) seeds from a generator seeded by the episode seed.
    init_seed, order_seed, _ = (int(s) for s in np.random.default_rng(9).integers(0, 2**31 - 1, size=3))
    splits = env._splits
    trainee = Trainee(
        splits,
        model="mlp",
        model_kwargs={},
        optimizer="adam",
        lr=0.01,
        batch_size=kw["batch_size"],
        momentum=0.9,
        weight_decay=0.0,
        init_seed=init_seed,
        order_seed=order_seed,
        device=torch.device("cpu"),
        eval_batch_size=kw["eval_batch_size"],
    )
    observer = Observer((*PAPER_FEATURES, "progress"), horizon=kw["episode_steps"], lr_min=1e-5, lr_max=0.1)
    assert observer.space == env.observation_space

    def observe(train_loss, train_logits, lr, t):
        val_loss, val_acc, val_logits = trainee.evaluate(splits.x_probe, splits.y_probe)
        obs, _ = observer.observe(
            train_loss=train_loss,
            train_logits=train_logits,
            val_loss=val_loss,
            val_acc=val_acc,
            val_logits=val_logits,
            observed_params=trainee.observed_params,
            lr=lr,
            t=t,
        )
        return obs

    x, y = splits.train_batch(torch.arange(kw["batch_size"]))
    loss, _, logits = trainee.evaluate(x, y)
    mine = [observe(loss, logits, 0.01, 0)]
    for t, lr in enumerate(lrs, start=1):
        trainee.set_lr(lr)
        result = trainee.train(kw["steps_per_action"])
        mine.append(observe(result.train_loss, result.last_logits, lr, t))
    for t, (a, b) in enumerate(zip(seen, mine, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"step {t}")
    # reset() starts a new run: the EMAs and the "previous" predictions are forgotten.
    observer.reset()
    again = observe(loss, logits, 0.01, 0)
    assert again[1] == again[2]  # the two prediction features start equal only from uniform previous predictions


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prediction_source": "val"}, "prediction_source"),
        ({"obs_transform": "log"}, "obs_transform"),
        ({"horizon": 0}, "horizon"),
    ],
)
def test_observer_refuses_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Observer(["val_loss"], **{"horizon": 5, "lr_min": 1e-5, "lr_max": 0.1, **kwargs})
    with pytest.raises(ValueError, match="unknown feature"):
        Observer(["val_los"], horizon=5, lr_min=1e-5, lr_max=0.1)
