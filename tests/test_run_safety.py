"""Nothing lost, nothing run that should not run (issue 16): concurrent writers, folder locks, the artifact trust
boundary, tuned-settings keys, the agent config's checks, LearnedLR outside its range, resume and read errors."""

from __future__ import annotations

import base64
import json
import multiprocessing as mp
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from omegaconf import OmegaConf
from tiny import hydra_env

import rlsched
from rlsched.bench.harness import ResultsFolderError, append_result, read_results, run_benchmark
from rlsched.bench.tuning import TuneSettings, Winner, write_tuned
from rlsched.config import (
    PROJECT_ROOT,
    TASK_RECORD,
    TunedFileError,
    build_baselines,
    load_tuned,
    task_key,
    task_record,
    to_dict,
    tuned_file,
    tuned_key,
)
from rlsched.control import make_controller
from rlsched.control.artifact import ArtifactError, load_artifact
from rlsched.control.learned import LearnedController
from rlsched.io import FolderBusyError, FolderLock, atomic_write_text
from rlsched.train.agent import TrainingRun, agent_defaults, train_controller, validate_agent_config

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "docs" / "results" / "demo_controller"


# ----- 1. concurrent writers and folder locks ------------------------------------------------------------------
def _append_rows(path: str, name: str, n: int) -> None:
    for i in range(n):
        append_result(path, {"controller": name, "seed": i, "test_loss": 0.5 + i})


def test_two_processes_appending_to_one_results_file_keep_every_row(tmp_path):
    path = str(tmp_path / "results.csv")
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_append_rows, args=(path, name, 60)) for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = read_results(path)
    assert len(rows) == 120
    assert sorted(rows.groupby("controller")["seed"].nunique().items()) == [("a", 60), ("b", 60)]


def _benchmark(kw: dict, name: str, lr: float, seeds: list[int], out: str, queue) -> None:
    results, _ = run_benchmark(kw, [make_controller("constant", name=name, lr=lr)], seeds, out, progress=False)
    queue.put((name, sorted(results.groupby("controller")["seed"].nunique().items())))


@pytest.mark.slow
def test_two_benchmarks_into_one_folder_keep_every_row_and_show_the_whole_table(tiny_env_kwargs, tmp_path):
    kw = {**tiny_env_kwargs, "episode_steps": 2, "test_eval": False}
    seeds = list(range(12))
    ctx = mp.get_context("spawn")  # a fresh interpreter each, as two shells would start them
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_benchmark, args=(kw, name, lr, seeds, str(tmp_path), queue))
        for name, lr in (("slow_lr", 0.001), ("fast_lr", 0.05))
    ]
    for p in procs:
        p.start()
    tables = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = read_results(tmp_path / "results.csv")
    assert len(rows) == 24 and rows.groupby("controller")["seed"].nunique().to_dict() == {"fast_lr": 12, "slow_lr": 12}
    # Each run shows all of its own seeds, and whoever finished last shows both controllers in full.
    for name, table in tables:
        assert (name, 12) in table
    assert tables[-1][1] == [("fast_lr", 12), ("slow_lr", 12)]


def test_run_benchmark_table_includes_other_controllers_in_the_folder(tiny_env_kwargs, tmp_path):
    kw = {**tiny_env_kwargs, "episode_steps": 2, "test_eval": False}
    run_benchmark(kw, [make_controller("constant", name="a", lr=0.01)], [0, 1], tmp_path, progress=False)
    results, curves = run_benchmark(
        kw, [make_controller("constant", name="b", lr=0.02)], [0, 1], tmp_path, progress=False
    )
    assert sorted(results["controller"]) == ["a", "a", "b", "b"]
    assert set(curves["controller"]) == {"a", "b"}


_HOLD = """
import sys, time
from rlsched.io import FolderLock
lock = FolderLock(sys.argv[1], name=".train.lock", what="a training run")
lock.acquire()
print("held", flush=True)
time.sleep(120)
"""


def test_second_training_run_in_a_busy_folder_is_refused_naming_the_holder(tiny_env_kwargs, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        agent = {**_tiny_agent(), "total_timesteps": 20}
        with pytest.raises(FolderBusyError, match=rf"being trained by pid {holder.pid} on host"):
            TrainingRun({**tiny_env_kwargs, "test_eval": False}, agent, tmp_path)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    # The holder died without releasing: the OS freed the lock; its record is stale and is taken over, with a warning.
    lock = FolderLock(tmp_path, name=".train.lock")
    with pytest.warns(UserWarning, match=rf"stale lock left by pid {holder.pid}"):
        lock.acquire()
    assert json.loads(lock.info_path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock.info_path.exists()


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"] and (tmp_path / "a.txt").read_text() == "two"


# ----- 2. the artifact trust boundary ---------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates the marker file: the proof that loading ran code from the artifact."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _crafted_copies(tmp_path: Path) -> tuple[Path, dict[str, Path]]:
    marker = tmp_path / "PAYLOAD_RAN"
    copies = {}
    # (a) vecnormalize.pkl replaced by a payload
    a = copies["vecnormalize.pkl"] = tmp_path / "pkl"
    shutil.copytree(DEMO, a)
    (a / "vecnormalize.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    # (b) a cloudpickled entry of model.zip's data JSON replaced by a payload
    b = copies["model.zip data"] = tmp_path / "data"
    shutil.copytree(DEMO, b)
    with zipfile.ZipFile(DEMO / "model.zip") as z:
        members = {n: z.read(n) for n in z.namelist()}
    data = json.loads(members["data"])
    data["observation_space"][":serialized:"] = base64.b64encode(pickle.dumps(_Payload(marker))).decode()
    members["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(b / "model.zip", "w") as z:
        for n, blob in members.items():
            z.writestr(n, blob)
    return marker, copies


def test_crafted_pickles_do_not_run_through_benchmark_transfer_or_learned_lr(tmp_path):
    marker, copies = _crafted_copies(tmp_path)
    for what, art in copies.items():
        load_artifact(art)  # transfer.py's path
        ctrl = LearnedController(art)  # benchmark.py's path
        assert ctrl.act(np.zeros(ctrl.artifact.meta["obs_shape"], dtype=np.float32), {}) is not None
        net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)
        )
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        x, y = torch.randn(20, 1, 28, 28), torch.randint(0, 10, (20,))
        rlsched.LearnedLR(opt, art, model=net, probe=(x, y), initial_batch=(x, y), total_steps=10)
        assert not marker.exists(), f"a crafted {what} ran its payload"
    # The crafted files do run under trust=True (SB3's loader, pickle): the boundary is real.
    with pytest.raises(ArtifactError):  # the payload returns None, not statistics
        load_artifact(copies["vecnormalize.pkl"], trust=True)
    assert marker.exists()


def test_crafted_policy_weights_are_refused_not_run(tmp_path):
    marker = tmp_path / "PAYLOAD_RAN"
    art = tmp_path / "pth"
    shutil.copytree(DEMO, art)
    with zipfile.ZipFile(DEMO / "model.zip") as z:
        members = {n: z.read(n) for n in z.namelist()}
    buf = tmp_path / "evil.pth"
    torch.save({"weight": _Payload(marker)}, buf)
    members["policy.pth"] = buf.read_bytes()
    with zipfile.ZipFile(art / "model.zip", "w") as z:
        for n, blob in members.items():
            z.writestr(n, blob)
    with pytest.raises(ArtifactError, match=r"could not load model\.zip"):
        load_artifact(art)
    assert not marker.exists()


def test_legacy_artifact_loads_only_with_trust(tmp_path):
    art = tmp_path / "legacy"
    shutil.copytree(DEMO, art)
    (art / "policy.json").unlink()
    (art / "vecnormalize.json").unlink()
    with pytest.raises(ArtifactError, match=r"convert_artifact\.py .*trust=True"):
        load_artifact(art)
    trusted, safe = load_artifact(art, trust=True), load_artifact(DEMO)
    obs = np.random.default_rng(0).normal(scale=3.0, size=(64, *safe.meta["obs_shape"])).astype(np.float32)
    for o in obs:  # the converted, committed demo answers exactly as SB3's own loader
        assert np.array_equal(trusted.predict(o)[0], safe.predict(o)[0])


# ----- 3. tuned-settings keys -----------------------------------------------------------------------------------
def _compose(name: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose(name, overrides=overrides)


def _task_kw(cfg) -> dict:
    return {**to_dict(cfg.env), "reward": "neg_val_loss", "reward_reference": None}


DEMO_MLP = ["experiment=rq1_learned_vs_baselines"]


@pytest.mark.parametrize(
    "change",
    [
        {"model_kwargs": {"hidden": [32]}},
        {"weight_decay": 0.01},
        {"val_probe": 500},
        {"lr_max": 0.05},
        {"momentum": 0.5},
        {"val_size": 5000},
        {"precision": "bf16"},
    ],
)
def test_every_task_field_changes_the_tuned_key(change):
    kw = _task_kw(_compose("benchmark", DEMO_MLP))
    assert tuned_key(kw) != tuned_key({**kw, **change})
    assert tuned_key({**kw, **change}).startswith(task_key({**kw, **change}) + "_")  # the readable prefix stays


def test_controller_side_fields_keep_the_tuned_key():
    kw = _task_kw(_compose("benchmark", DEMO_MLP))
    for change in ({"features": ["val_loss", "log10_lr"]}, {"reward": "final_only"}, {"action": "discrete"}):
        assert tuned_key({**kw, **change}) == tuned_key(kw), change


@pytest.mark.parametrize(
    ("config", "overrides"),
    [
        ("benchmark", ["experiment=demo"]),
        ("benchmark", ["experiment=rq1_learned_vs_baselines"]),
        ("benchmark", ["experiment=rq3_final_reward"]),
        ("benchmark", ["experiment=rq4_raw_lr"]),
        ("benchmark", []),  # the reduced CNN task
        ("benchmark", ["experiment=demo", "dataset=mnist"]),  # the transfer target of RQ2
    ],
)
def test_committed_tuned_files_are_found_for_their_tasks(config, overrides):
    kw = _task_kw(_compose(config, overrides))
    path = tuned_file(kw)
    assert path.is_file(), path
    body = {k: v for k, v in yaml.safe_load(path.read_text()).items() if k != TASK_RECORD}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_tuned(kw) == body and len(body) >= 5


def test_a_task_variant_without_tuned_settings_warns_by_name():
    cfg = _compose("benchmark", DEMO_MLP)
    kw = {**_task_kw(cfg), "model_kwargs": {"hidden": [32]}}  # a width-32 MLP: not the tuned width-128 task
    with pytest.warns(UserWarning, match=rf"no tuned settings for .*'constant'.* on task {tuned_key(kw)}"):
        _, source = build_baselines(["constant", "cosine"], cfg.baselines, kw)
    assert set(source.values()) == {"defaults"}


def test_tuning_into_a_file_of_another_task_is_refused_naming_the_keys(tiny_env_kwargs, tmp_path):
    other = {**tiny_env_kwargs, "weight_decay": 0.01}
    path = tuned_file(tiny_env_kwargs, tmp_path)
    path.write_text(OmegaConf.to_yaml({TASK_RECORD: task_record(other), "constant": {"lr": 0.1}}))
    winner = Winner("constant", 0, 1, 0.5, {}, {"kind": "constant", "lr": 0.01}, [], 1.0)
    settings = TuneSettings(1, [20000], (0.001, 0.1))
    with pytest.raises(TunedFileError, match=r"weight_decay: 0\.01 -> 0\.0"):
        write_tuned(path, winner, [20000], settings, "test", tiny_env_kwargs)
    with pytest.raises(TunedFileError, match=r"weight_decay: 0\.01 -> 0\.0"):
        load_tuned(tiny_env_kwargs, tmp_path)
    path.unlink()
    write_tuned(path, winner, [20000], settings, "test", tiny_env_kwargs)
    assert load_tuned(tiny_env_kwargs, tmp_path) == {"constant": {"kind": "constant", "lr": 0.01}}


# ----- 4. the agent config --------------------------------------------------------------------------------------
def _tiny_agent(**overrides) -> dict:
    agent = {
        "algo": "ppo",
        "policy": "MlpPolicy",
        "n_envs": 2,
        "total_timesteps": 40,
        "checkpoint_every": 10,
        "eval_every": 0,
        "progress": False,
        "ppo": {"n_steps": 10, "batch_size": 20, "n_epochs": 1, "policy_kwargs": {"net_arch": [8]}},
    }
    agent.update(overrides)
    return agent


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"typo_key": 1}, r"unknown agent key\(s\) \['typo_key'\]"),
        ({"artifact_from": "foo"}, "unknown agent.artifact_from 'foo'"),
        ({"ppo": {"n_steps": 10, "batch_size": 20, "bogus": 1}}, r"unknown agent.ppo key\(s\) \['bogus'\]"),
        (
            {"ppo": {"n_steps": 10, "batch_size": 20, "learning_rate": -1}},
            "agent.ppo.learning_rate must be a number > 0",
        ),
        ({"ppo": {"n_steps": 10, "batch_size": 20, "gamma": 1.5}}, r"agent.ppo.gamma must be a number in \[0, 1\]"),
        ({"ppo": {"n_steps": 10, "batch_size": 20, "policy_kwargs": {"net_arc": [8]}}}, "policy_kwargs key"),
        ({"normalize": {"clip": 5}}, r"unknown agent.normalize key\(s\) \['clip'\]"),
        ({"eval_episodes": 0}, "agent.eval_episodes must be an integer >= 1"),
        ({"train_seeds_start": -3}, "agent.train_seeds_start must be an integer >= 0"),
    ],
)
def test_bad_agent_config_is_refused_naming_the_key(change, named):
    with pytest.raises(ValueError, match=named):
        validate_agent_config(_tiny_agent(**change))


def test_recurrent_ppo_keywords_are_checked_against_its_own_signature():
    agent = _tiny_agent(algo="recurrent_ppo", policy="MlpLstmPolicy")
    agent["ppo"] = {**agent["ppo"], "policy_kwargs": {"lstm_hidden_size": 8}}
    validate_agent_config(agent)
    agent["ppo"]["rollout_buffer_class"] = None  # a PPO keyword RecurrentPPO does not take
    with pytest.raises(ValueError, match=r"unknown agent.ppo key\(s\) \['rollout_buffer_class'\] for RecurrentPPO"):
        validate_agent_config(agent)


def test_bad_seed_is_refused_by_name_before_anything_is_written(tiny_env_kwargs, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\), got -1"):
        TrainingRun({**tiny_env_kwargs, "test_eval": False}, _tiny_agent(), out, seed=-1)
    assert not out.exists()


def test_agent_defaults_live_only_in_the_dataclass():
    """conf/agent/ppo.yaml sets only PPO's hyperparameters; every other agent key composes to AgentConfig's default."""
    yaml_cfg = yaml.safe_load((REPO / "conf" / "agent" / "ppo.yaml").read_text())
    assert yaml_cfg.pop("defaults") == ["agent_schema", "_self_"]
    assert set(yaml_cfg) == {"ppo"}
    composed = to_dict(_compose("train", []).agent)
    defaults = agent_defaults()
    assert {k: v for k, v in composed.items() if k != "ppo"} == {k: v for k, v in defaults.items() if k != "ppo"}
    assert composed["ppo"] == yaml_cfg["ppo"]
    validate_agent_config(composed)


def test_agent_schema_refuses_a_wrong_type_while_composing():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match=r"agent\.n_envs=two"):
        _compose("train", ["agent.n_envs=two"])
    with pytest.raises(ConfigCompositionException, match=r"agent\.normalize\.obs=maybe"):
        _compose("train", ["agent.normalize.obs=maybe"])
    assert to_dict(_compose("train", ["agent=recurrent_ppo"]).agent)["policy"] == "MlpLstmPolicy"


# ----- 5. LearnedLR outside its training range ------------------------------------------------------------------
def _demo_scheduler(**kwargs):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    x, y = torch.randn(20, 1, 28, 28), torch.randint(0, 10, (20,))
    sched = rlsched.LearnedLR(opt, DEMO, model=net, probe=(x, y), initial_batch=(x, y), total_steps=10, **kwargs)

    def step(loss_value: float | None = None) -> None:
        logits = net(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step(loss if loss_value is None else torch.tensor(loss_value), logits)

    return sched, opt, step


def test_learned_lr_warns_once_past_total_steps_and_holds_the_rate():
    sched, opt, step = _demo_scheduler()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(10):
            step()
    lr = opt.param_groups[0]["lr"]
    with pytest.warns(UserWarning, match="past total_steps=10") as caught:
        for _ in range(12):
            step()
    assert len([w for w in caught if "total_steps" in str(w.message)]) == 1
    assert opt.param_groups[0]["lr"] == lr and sched.held


def test_learned_lr_non_finite_loss_raises_or_holds():
    _, _, step = _demo_scheduler()
    with pytest.raises(FloatingPointError, match="non-finite train_loss"):
        for _ in range(5):
            step(float("nan"))
    sched, opt, step = _demo_scheduler(on_nonfinite="hold")
    for _ in range(5):
        step()
    lr = opt.param_groups[0]["lr"]
    with pytest.warns(UserWarning, match="held"):
        for _ in range(5):
            step(float("inf"))
    for _ in range(3):
        step()
    assert opt.param_groups[0]["lr"] == lr and "non-finite" in sched.held
    with pytest.raises(ValueError, match="on_nonfinite"):
        _demo_scheduler(on_nonfinite="ignore")


# ----- 6. resume, reading, refusals, entry-point errors ---------------------------------------------------------
def test_resume_falls_back_to_the_newest_readable_checkpoint(tiny_env_kwargs, tmp_path):
    kw = {**tiny_env_kwargs, "episode_steps": 5, "test_eval": False}
    train_controller(kw, _tiny_agent(total_timesteps=40), tmp_path)
    ckpts = sorted((tmp_path / "checkpoints").glob("step_*"))
    assert len(ckpts) == 2
    data = (ckpts[-1] / "model.zip").read_bytes()
    (ckpts[-1] / "model.zip").write_bytes(data[: len(data) // 2])  # truncated: a full disk, a kill mid-copy
    with pytest.warns(UserWarning, match=rf"checkpoint {ckpts[-1]} is unreadable"):
        artifact = train_controller(kw, _tiny_agent(total_timesteps=60), tmp_path)
    assert load_artifact(artifact).model.num_timesteps == 60


def test_corrupt_results_row_is_reported_by_file_and_line(tmp_path):
    path = tmp_path / "results.csv"
    for seed in range(3):
        append_result(path, {"controller": "a", "seed": seed, "test_loss": 0.5})
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = "garbage,row,here\n"
    path.write_text("".join(lines))
    with pytest.raises(ResultsFolderError, match=rf"{path}:3: corrupt row"):
        read_results(path)
    lines[2] = "a,1,0.5,extra,fields\n"
    path.write_text("".join(lines))
    with pytest.raises(ResultsFolderError, match=rf"{path}:3: corrupt row"):
        read_results(path)


def _train_cli(args: list[str], data_dir: Path, full: bool = False) -> subprocess.CompletedProcess:
    # PYTHONPATH: this checkout's rlsched, whatever copy the environment has installed.
    env = {**os.environ, "RLSCHED_DATA_DIR": str(data_dir), "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}
    env.pop("HYDRA_FULL_ERROR", None)
    if full:
        env["HYDRA_FULL_ERROR"] = "1"
    hydra_dir = tempfile.mkdtemp(prefix="rlsched-hydra-")
    return subprocess.run(
        [sys.executable, str(REPO / "experiments" / "train.py"), *args, f"hydra.run.dir={hydra_dir}", "logger=none"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_entry_point_user_error_is_one_line_and_writes_nothing(data_dir, tmp_path):
    out = tmp_path / "run"
    proc = _train_cli(["agent.artifact_from=foo", f"out_dir={out}"], data_dir)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "unknown agent.artifact_from 'foo'" in errors[0]
    assert not out.exists()
    proc = _train_cli(["+agent.typo_key=1", "seed=-1", f"out_dir={out}"], data_dir, full=True)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "typo_key" in proc.stderr
    assert not out.exists()


TINY_TRAIN = [
    *hydra_env(episode_steps=3),
    "agent.total_timesteps=4000",
    "agent.ppo.n_steps=10",
    "agent.ppo.batch_size=20",
    "agent.ppo.n_epochs=1",
    "agent.eval_every=0",
    "benchmark.enabled=false",
]


@pytest.mark.slow
def test_two_train_py_runs_in_one_folder_the_second_is_refused_naming_the_first(data_dir, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "RLSCHED_DATA_DIR": str(data_dir), "WANDB_SILENT": "true", "PYTHONPATH": str(REPO)}
    args = [sys.executable, str(REPO / "experiments" / "train.py"), *TINY_TRAIN, f"out_dir={out}", "logger=none"]
    hydra = f"hydra.run.dir={tempfile.mkdtemp(prefix='rlsched-hydra-')}"
    first = subprocess.Popen([*args, hydra], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / ".train.lock.json").is_file():
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took the folder"
            time.sleep(0.2)
        second = subprocess.run([*args, hydra], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 1 and "Traceback" not in second.stderr
        assert f"is being trained by pid {first.pid} on host" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)  # saves a checkpoint, as Ctrl-C does
        first.wait(120)
