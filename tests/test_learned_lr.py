"""rlsched.LearnedLR: a controller artifact driving a plain PyTorch loop exactly as it drives the env."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium.utils.seeding import np_random
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize
from tiny import TINY_ENV

import rlsched
from rlsched.control.artifact import ArtifactError, algorithm_class, save_artifact
from rlsched.control.learned import LearnedController
from rlsched.env.data import make_splits
from rlsched.env.lr_control import LRControlEnv
from rlsched.env.models import build_model
from rlsched.env.seeds import seed_block

REPO = Path(__file__).resolve().parents[1]
K, T = 4, 6  # 24 optimizer steps: more than the 20 batches of an epoch, so the data order reshuffles once
SEED = seed_block("evaluation", 0, 1)[0]


@pytest.fixture(scope="module")
def env_kwargs(data_dir: Path) -> dict:
    """conftest's tiny env, with K > 1 and a wide multiplier range so that the LR visibly moves."""
    return {
        **TINY_ENV,
        "eval_batch_size": 1000,
        "episode_steps": T,
        "steps_per_action": K,
        "scale_range": [0.8, 1.25],
        "test_eval": False,
        "final_val_eval": False,
        "data_dir": str(data_dir),
    }


def _untrained_artifact(out: Path, env_kwargs: dict, algo: str) -> Path:
    """An untrained policy whose actions depend strongly on the observation, with non-trivial VecNormalize
    statistics (from a few env steps): enough to test that both drivers compute the same thing."""
    env = LRControlEnv(**env_kwargs)
    venv = VecNormalize(DummyVecEnv([lambda: env]), norm_reward=False)
    venv.seed(SEED)
    venv.reset()
    for a in (-1.0, 1.0, 0.5):
        venv.step(np.array([[a]], dtype=np.float32))
    kwargs = {"policy_kwargs": {"net_arch": [16]}} if algo == "ppo" else {"policy_kwargs": {"lstm_hidden_size": 8}}
    policy = "MlpPolicy" if algo == "ppo" else "MlpLstmPolicy"
    model = algorithm_class(algo)(policy, venv, seed=SEED, device="cpu", **kwargs)
    with torch.no_grad():  # the action head starts ~0.01: scale it so that actions span [-1, 1]
        model.policy.action_net.weight.mul_(300.0)
    return save_artifact(out, model=model, vecnormalize=venv, env_config=env.cfg.to_dict(), algo=algo)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory, env_kwargs) -> Path:
    return _untrained_artifact(tmp_path_factory.mktemp("ppo"), env_kwargs, "ppo")


@pytest.fixture(scope="module")
def recurrent_artifact(tmp_path_factory, env_kwargs) -> Path:
    return _untrained_artifact(tmp_path_factory.mktemp("rppo"), env_kwargs, "recurrent_ppo")


def _env_run(env_kwargs: dict, artifact: Path) -> list[tuple[float, float, float]]:
    """(lr, train loss, probe loss) per env step of one episode, driven by the env-side LearnedController."""
    env = LRControlEnv(**env_kwargs)
    ctrl = LearnedController(artifact)
    obs, info = env.reset(seed=SEED)
    ctrl.reset(env, obs, info)
    rows, done = [], False
    while not done:
        obs, _, done, _, info = env.step(ctrl.act(obs, info))
        rows.append((info["lr"], info["train_loss"], info["val_loss"]))
    return rows


class PlainRun:
    """The user's side: a model, an optimizer and a shuffled batch order, seeded as the env seeds an episode."""

    def __init__(self, env_kwargs: dict, seed: int, hidden: tuple[int, ...] = (128,)) -> None:
        init_seed, order_seed, split_seed = (int(s) for s in np_random(seed)[0].integers(0, 2**31 - 1, size=3))
        kw = env_kwargs
        self.splits = make_splits(
            "fashion_mnist",
            split_seed=split_seed,
            data_dir=kw["data_dir"],
            train_size=kw["train_size"],
            val_size=kw["val_size"],
            val_probe=kw["val_probe"],
            test_size=kw["test_size"],
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.net = build_model("mlp", 1, 28, 10, hidden=hidden)
        self.batch = kw["batch_size"]
        self.order = torch.Generator().manual_seed(order_seed)
        self.batches: list[torch.Tensor] = []

    def rows(self, n: int) -> torch.Tensor:
        """The n-th batch's rows: epoch-wise reshuffles, ragged last batch dropped (the env's order)."""
        per_epoch = self.splits.train_size // self.batch
        while len(self.batches) <= n:
            perm = torch.randperm(self.splits.train_size, generator=self.order)
            self.batches += [perm[i * self.batch : (i + 1) * self.batch] for i in range(per_epoch)]
        return self.batches[n]

    def learned(self, opt, artifact: Path, **kwargs) -> rlsched.LearnedLR:
        s = self.splits
        return rlsched.LearnedLR(
            opt,
            artifact,
            model=self.net,
            probe=(s.x_probe, s.y_probe),
            initial_batch=s.train_batch(torch.arange(self.batch)),
            total_steps=T * K,
            **kwargs,
        )

    def train_step(self, opt, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.splits.train_batch(self.rows(n))
        self.net.train()
        logits = self.net(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss, logits


def test_plain_loop_matches_the_env(env_kwargs, artifact):
    expected = _env_run(env_kwargs, artifact)
    run = PlainRun(env_kwargs, SEED)
    opt = torch.optim.Adam(run.net.parameters(), lr=0.01)
    sched = run.learned(opt, artifact)
    assert sched.steps_per_action == K  # the artifact's K by default
    got, used = [], []
    for n in range(T * K):
        used.append(opt.param_groups[0]["lr"])
        loss, logits = run.train_step(opt, n)
        sched.step(loss, logits)
        if (n + 1) % K == 0:
            f = sched.last_features
            got.append((used[-1], f["train_loss"], f["val_loss"]))
    # The LR is constant within each window of K optimizer steps, and the policy really moves it.
    assert all(len(set(used[i : i + K])) == 1 for i in range(0, T * K, K))
    lrs = [r[0] for r in expected]
    assert len(set(lrs)) >= 3, f"the test policy barely acts: {lrs}"
    assert len(got) == len(expected) == T
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-5, atol=0)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"]]


def test_two_param_groups_one_learned_one_step_lr(env_kwargs, artifact):
    run = PlainRun(env_kwargs, SEED, hidden=(64, 32))
    body, head = run.net.body, run.net.head  # body: Flatten, Linear(784,64), ReLU, Linear(64,32), ReLU
    groups = [{"params": body[1].parameters(), "lr": 0.05}, {"params": [*body[3].parameters(), *head.parameters()]}]
    opt = torch.optim.Adam(groups, lr=0.01)
    step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
    with pytest.raises(ValueError, match="not in the controlled param group"):
        run.learned(opt, artifact, param_groups=[1], observed=(body[1].weight, head.weight))
    sched = run.learned(opt, artifact, param_groups=[1], observed=(body[3].weight, head.weight))
    learned_lrs = [sched.lr]
    for n in range(T * K):
        loss, logits = run.train_step(opt, n)
        step_lr.step()  # touches every group; LearnedLR, stepped after it, rewrites its own
        sched.step(loss, logits)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 ** ((n + 1) // 5))
        assert opt.param_groups[1]["lr"] == sched.lr
        if (n + 1) % K == 0:
            learned_lrs.append(sched.lr)
    assert len(set(learned_lrs)) >= 3, learned_lrs
    # The features come from the observed layers of the controlled group.
    f = sched.last_features
    assert f["penult_weight_mean"] == pytest.approx(body[3].weight.mean().item(), rel=1e-4)
    assert f["last_weight_var"] == pytest.approx(head.weight.var(unbiased=False).item(), rel=1e-4)
    assert sched.get_last_lr() == [opt.param_groups[0]["lr"], sched.lr]  # LRScheduler: one rate per group


@pytest.mark.parametrize("algo", ["ppo", "recurrent_ppo"])
def test_checkpoint_mid_window_resumes_the_same_run(env_kwargs, artifact, recurrent_artifact, algo):
    art = artifact if algo == "ppo" else recurrent_artifact
    stop = K + 1  # mid-window: one loss is pending

    def fresh() -> tuple[PlainRun, torch.optim.Optimizer, rlsched.LearnedLR]:
        run = PlainRun(env_kwargs, SEED)
        opt = torch.optim.Adam(run.net.parameters(), lr=0.01)
        return run, opt, run.learned(opt, art)

    run, opt, sched = fresh()
    lrs, checkpoint = [], io.BytesIO()
    for n in range(T * K):
        if n == stop:
            torch.save({"net": run.net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}, checkpoint)
        lrs.append(opt.param_groups[0]["lr"])
        sched.step(*run.train_step(opt, n))
    if algo == "recurrent_ppo":
        assert sched.state_dict()["policy_state"] is not None
    run2, opt2, sched2 = fresh()
    checkpoint.seek(0)
    state = torch.load(checkpoint, weights_only=True)
    run2.net.load_state_dict(state["net"])
    opt2.load_state_dict(state["opt"])
    sched2.load_state_dict(state["sched"])
    resumed = []
    for n in range(stop, T * K):
        resumed.append(opt2.param_groups[0]["lr"])
        sched2.step(*run2.train_step(opt2, n))
    assert resumed == lrs[stop:]
    assert len(set(lrs)) >= 3


def _broken_copy(artifact: Path, tmp_path: Path, edit) -> Path:
    out = tmp_path / "broken"
    shutil.copytree(artifact, out)
    cfg, meta = (json.loads((out / f).read_text()) for f in ("env_config.json", "meta.json"))
    edit(out, cfg, meta)
    (out / "env_config.json").write_text(json.dumps(cfg))
    (out / "meta.json").write_text(json.dumps(meta))
    return out


def _unknown_feature(out, cfg, meta):
    cfg["features"][-1] = meta["feature_names"][-1] = "grad_norm"


def _discrete_action(out, cfg, meta):
    cfg["action"] = meta["action"] = "discrete"


def _unknown_option(out, cfg, meta):
    cfg["warmup_steps"] = 10


def _missing_vecnormalize(out, cfg, meta):
    (out / "vecnormalize.json").unlink()


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_unknown_feature, "grad_norm"),
        (_discrete_action, "Discrete"),
        (_unknown_option, "warmup_steps"),
        (_missing_vecnormalize, "vecnormalize.json"),
    ],
)
def test_bad_artifact_is_refused_naming_the_mismatch(artifact, tmp_path, edit, named):
    bad = _broken_copy(artifact, tmp_path, edit)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.zeros(2, 4)

    def probe():
        raise AssertionError("an artifact is checked before anything is evaluated")

    with pytest.raises(ArtifactError, match=named):
        rlsched.LearnedLR(opt, bad, model=net, probe=probe, initial_batch=(x, x), total_steps=8)


def test_bad_arguments_are_refused(env_kwargs, artifact):
    run = PlainRun(env_kwargs, SEED)
    opt = torch.optim.Adam(run.net.parameters(), lr=0.5)
    with pytest.raises(ValueError, match=r"outside the controller's range"):
        run.learned(opt, artifact)
    opt = torch.optim.Adam(run.net.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="param_groups"):
        run.learned(opt, artifact, param_groups=[1])
    with pytest.raises(ValueError, match="total_steps"):
        rlsched.LearnedLR(opt, artifact, model=run.net, probe=lambda: None, initial_batch=lambda: None, total_steps=2)
    sched = run.learned(opt, artifact)
    for n in range(K - 1):
        sched.step(*run.train_step(opt, n))
    x, y = run.splits.train_batch(run.rows(K - 1)[:50])  # a ragged last batch, at a decision
    logits = run.net(x).detach()
    with pytest.raises(ValueError, match="drop_last=True"):
        sched.step(F.cross_entropy(logits, y), logits)


def test_loading_needs_no_hydra_wandb_or_data():
    """The committed demo controller (the current MDP's 10 features, scale per optimizer step) drives a torch
    model on random tensors in a fresh process that never imports Hydra, OmegaConf or W&B; `import rlsched`
    alone imports none of LearnedLR's modules."""
    code = """
import sys, torch, rlsched
assert "rlsched.control.learned_lr" not in sys.modules and "stable_baselines3" not in sys.modules
net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
opt = torch.optim.Adam(net.parameters(), lr=0.01)
x, y = torch.randn(20, 1, 28, 28), torch.randint(0, 10, (20,))
sched = rlsched.LearnedLR(opt, "docs/results/demo_controller", model=net, probe=(x, y), initial_batch=(x, y),
                          total_steps=10)
for _ in range(10):
    logits = net(x); loss = torch.nn.functional.cross_entropy(logits, y)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step(loss, logits)
assert sched.steps_per_action == 5 and sched.cfg.scale_per == "optimizer_step" and len(sched.cfg.features) == 10
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"hydra", "omegaconf", "wandb"})
assert not heavy, heavy
print("lr", sched.get_last_lr())
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("lr [")


def test_example_runs_its_three_schedules(tmp_path):
    """examples/learned_lr_torchvision.py end to end on random images (the shapes of Fashion-MNIST), one epoch."""
    import argparse
    import importlib.util

    spec = importlib.util.spec_from_file_location("example", REPO / "examples" / "learned_lr_torchvision.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    gen = torch.Generator().manual_seed(SEED)

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.randn(n, 1, 28, 28, generator=gen), torch.randint(0, 10, (n,), generator=gen)

    data = {"train": split(500), "val": split(200), "test": split(100)}
    args = argparse.Namespace(artifact=str(REPO / "docs/results/demo_controller"), epochs=1, batch_size=50, every=5,
                              seed=SEED)  # fmt: skip
    results = {name: example.train(name, data, args) for name in ("learned", "plateau", "one_cycle")}
    for r in results.values():
        assert len(r["lrs"]) == 10 and 0 <= r["test_acc"] <= 1
    assert results["one_cycle"]["lrs"][0] == pytest.approx(example.LR / 10)
    example.plot(results, tmp_path / "lr.png")
    assert (tmp_path / "lr.png").stat().st_size > 0


# ----- as an LRScheduler: torch's chains and Lightning ------------------------------------------------------------
W = 5  # warm-up steps before the controller takes over


def test_is_an_lr_scheduler_and_runs_after_a_warm_up_in_sequential_lr(env_kwargs, artifact):
    """SequentialLR([LinearLR, LearnedLR]) = LinearLR alone for W steps, then a LearnedLR built on the warmed-up
    model: the controller's run starts at the milestone, from the model and the rate the warm-up left."""
    run = PlainRun(env_kwargs, SEED)
    opt = torch.optim.Adam(run.net.parameters(), lr=0.01)
    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=W - 1)
    learned = run.learned(opt, artifact)
    assert isinstance(learned, torch.optim.lr_scheduler.LRScheduler)
    chain = torch.optim.lr_scheduler.SequentialLR(opt, [warmup, learned], milestones=[W])
    chained_lrs = []
    for n in range(W + T * K):
        chained_lrs.append(opt.param_groups[0]["lr"])
        loss, logits = run.train_step(opt, n)
        learned.observe(loss, logits)
        chain.step()
    # By hand: the warm-up alone, then a LearnedLR made at the milestone and stepped with (loss, logits).
    ref = PlainRun(env_kwargs, SEED)
    opt2 = torch.optim.Adam(ref.net.parameters(), lr=0.01)
    warmup2 = torch.optim.lr_scheduler.LinearLR(opt2, start_factor=0.1, total_iters=W - 1)
    manual_lrs, sched = [], None
    for n in range(W + T * K):
        manual_lrs.append(opt2.param_groups[0]["lr"])
        loss, logits = ref.train_step(opt2, n)
        if n + 1 < W:
            warmup2.step()
        elif n + 1 == W:
            sched = ref.learned(opt2, artifact)
        else:
            sched.step(loss, logits)
    assert chained_lrs == manual_lrs
    assert chained_lrs[:W] == pytest.approx([0.001 + 0.009 * min(n, W - 1) / (W - 1) for n in range(W)])
    assert len(set(chained_lrs[W:])) >= 3  # the controller moves the rate after the milestone
    assert chain.get_last_lr() == [opt.param_groups[0]["lr"]] and learned.t == T


def test_chained_scheduler_equals_stepping_both_by_hand(env_kwargs, artifact):
    """ChainedScheduler([StepLR, LearnedLR on group 1]) = today's two-scheduler loop, rate for rate."""

    def two_groups(run: PlainRun) -> tuple[torch.optim.Optimizer, rlsched.LearnedLR, torch.optim.lr_scheduler.StepLR]:
        body, head = run.net.body, run.net.head
        groups = [{"params": body[1].parameters(), "lr": 0.05}, {"params": [*body[3].parameters(), *head.parameters()]}]
        opt = torch.optim.Adam(groups, lr=0.01)
        step_lr = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)
        return opt, run.learned(opt, artifact, param_groups=[1], observed=(body[3].weight, head.weight)), step_lr

    hidden = (64, 32)
    run, ref = PlainRun(env_kwargs, SEED, hidden), PlainRun(env_kwargs, SEED, hidden)
    opt, learned, step_lr = two_groups(run)
    chain = torch.optim.lr_scheduler.ChainedScheduler([step_lr, learned])
    opt2, learned2, step_lr2 = two_groups(ref)
    for n in range(T * K):
        loss, logits = run.train_step(opt, n)
        learned.observe(loss, logits)
        chain.step()
        loss2, logits2 = ref.train_step(opt2, n)
        step_lr2.step()
        learned2.step(loss2, logits2)
        assert [g["lr"] for g in opt.param_groups] == [g["lr"] for g in opt2.param_groups]
    assert chain.get_last_lr() == [0.05 * 0.5 ** (T * K // 5), learned.lr] and learned.t == T


def test_step_without_the_step_loss_says_how_to_hand_it_over(env_kwargs, artifact):
    run = PlainRun(env_kwargs, SEED)
    opt = torch.optim.Adam(run.net.parameters(), lr=0.01)
    sched = run.learned(opt, artifact)
    run.train_step(opt, 0)
    with pytest.raises(ValueError, match=r"observe\(loss, logits\).*LearnedLRCallback"):
        sched.step()


def test_lightning_trainer_with_the_callback_matches_the_plain_loop(env_kwargs, artifact, tmp_path):
    pl = pytest.importorskip("pytorch_lightning", reason="Lightning is a dev extra")
    from rlsched.control.lightning import LearnedLRCallback

    plain = PlainRun(env_kwargs, SEED)
    opt = torch.optim.Adam(plain.net.parameters(), lr=0.01)
    sched = plain.learned(opt, artifact)
    expected = []
    for n in range(T * K):
        sched.step(*plain.train_step(opt, n))
        expected.append(opt.param_groups[0]["lr"])

    run = PlainRun(env_kwargs, SEED)
    batches = [run.splits.train_batch(run.rows(n)) for n in range(T * K)]

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = run.net

        def training_step(self, batch, batch_idx):
            logits = self.net(batch[0])
            return {"loss": F.cross_entropy(logits, batch[1]), "logits": logits.detach()}

        def configure_optimizers(self):
            opt = torch.optim.Adam(self.parameters(), lr=0.01)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": run.learned(opt, artifact), "interval": "step"}}

    class RecordLR(pl.Callback):
        def __init__(self) -> None:
            self.lrs: list[float] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    record = RecordLR()
    trainer = pl.Trainer(
        max_steps=T * K,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[LearnedLRCallback(), record],
        default_root_dir=tmp_path,
    )
    module = Module()
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    assert record.lrs == pytest.approx(expected, rel=1e-6) and len(set(expected)) >= 3
    assert "training_step" not in module.__dict__  # the callback's wrapper is gone after the fit


def test_step_with_an_int_is_the_epoch_older_sequential_lr_passes(env_kwargs, artifact):
    """Older torch's SequentialLR calls step(0) at a milestone: an epoch (the run restarts), not a loss of 0."""
    run = PlainRun(env_kwargs, SEED)
    opt = torch.optim.Adam(run.net.parameters(), lr=0.01)
    sched = run.learned(opt, artifact)
    for n in range(K):
        sched.step(*run.train_step(opt, n))
    assert sched.t == 1 and sched.optimizer_steps == K
    with pytest.warns(UserWarning):  # torch's deprecation of step(epoch)
        sched.step(0)
    assert sched.t == 0 and sched.optimizer_steps == 0 and sched.last_epoch == 0
