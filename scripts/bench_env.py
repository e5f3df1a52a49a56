"""Benchmark: LRControl-v1 episodes against a plain PyTorch loop doing the same training work.

For three cases on real Fashion-MNIST (the MLP at one optimizer step per env step, the cheapest step and so
the worst case for overhead; the MLP in the demo's shape, 5 optimizer steps per env step; the paper's CNN),
it times
  env:   N episodes through gymnasium.make (reset + episode_steps steps, constant action, final val and
         test evaluation on);
  plain: the same optimizer steps (Adam, batch B) and the same forward passes (first training batch and
         probe at reset, probe after every K optimizer steps, full val + test at the end), computing the
         validation loss only: no accuracy, no observation features, no bookkeeping;
and reports the median over interleaved repeats, their ratio and the raw training throughput (images/s).
The load average is recorded too: on a shared machine, other processes are the main source of noise.

    python scripts/bench_env.py [--cases mlp mlp_demo cnn] [--mlp-repeats 15] [--out results/bench_env.json]

With --vector it times the batched vector env (rlsched.env.vector) instead, for N trainees in {1, 8, 64, 256}:
  vector: LRControlVecEnv stepped by SB3's VecEnv API (zero actions, autoreset, final evaluations);
  bare:   the same BatchedPopulation training without features, rewards or bookkeeping;
  dummy:  N single envs in SB3's DummyVecEnv (for small N only);
and reports env steps per second for each and the vector/bare time ratio.

    python scripts/bench_env.py --vector --device cuda --cases mlp_demo cnn --n 1 8 64 256
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

import rlsched  # noqa: F401  (registers rlsched/LRControl-v1)
from rlsched.env.data import DATA_DIR_ENV, DataSplits, make_splits
from rlsched.env.lr_control import LRControlEnv
from rlsched.env.models import build_model

REPO_ROOT = Path(__file__).resolve().parents[1]
INITIAL_LR = 1e-3  # low enough that no run diverges (a diverged episode would end early and do less work)
# The plain loop evaluates in the chunk that is fastest for it (measured on the 2-core CPU: 128 for the CNN, whose
# activations must stay in cache; 2000 for the MLP), not in the env's: it must be the best honest loop, not a
# copy of the env's choices. The env runs with its own default (eval_batch_size null: per model and device).
PLAIN_EVAL_CHUNK = {"cnn": 128, "mlp": 2000}


@dataclass
class Case:
    model: str
    train_size: int | None
    val_size: int | None
    test_size: int | None
    val_probe: int
    batch_size: int
    episode_steps: int
    episodes: int
    throughput_steps: int
    steps_per_action: int = 1  # K optimizer steps per env step (the plain loop: K steps, then one probe pass)

    def env_kwargs(self, data_dir: str) -> dict:
        return {
            "model": self.model,
            "train_size": self.train_size,
            "val_size": self.val_size,
            "test_size": self.test_size,
            "val_probe": self.val_probe,
            "batch_size": self.batch_size,
            "episode_steps": self.episode_steps,
            "steps_per_action": self.steps_per_action,
            "initial_lr": INITIAL_LR,
            "data_dir": data_dir,
            "test_eval": True,
            "final_val_eval": True,
            # The plain loop trains on one split (make_splits(split_seed=0)); the env uses the same one, so
            # both do the same work on the same data. The env's default, a fresh split per episode, costs
            # one extra data gather per reset: measured separately as `resplit_ms`.
            "split_seed": 0,
        }


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average_1_5_15min": [round(v, 2) for v in os.getloadavg()],
    }


# ----- the two contenders ---------------------------------------------------------------------------------
def run_env(env: gym.Env, case: Case, seed0: int) -> float:
    action = np.zeros(1, dtype=np.float32)  # scale action 0: the rate stays where it is
    start = time.perf_counter()
    for e in range(case.episodes):
        env.reset(seed=seed0 + e)
        for _ in range(case.episode_steps):
            _, _, terminated, _, info = env.step(action)
            if info["diverged"]:
                raise RuntimeError(f"{case.model}: the env diverged, so it did less work than the plain loop")
        if not terminated or "test_loss" not in info:
            raise RuntimeError("episode did not end with the final evaluation")
    return time.perf_counter() - start


@torch.no_grad()
def evaluate(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int) -> torch.Tensor:
    net.eval()
    logits = torch.cat([net(x[i : i + chunk]) for i in range(0, len(x), chunk)])
    return F.cross_entropy(logits, y)


def run_plain(s: DataSplits, case: Case, seed0: int) -> float:
    spec = s.spec
    b = case.batch_size
    start = time.perf_counter()
    for e in range(case.episodes):
        torch.manual_seed(seed0 + e)
        net = build_model(case.model, spec.channels, spec.image_size, spec.num_classes)
        opt = torch.optim.Adam(net.parameters(), lr=INITIAL_LR)
        order = torch.Generator().manual_seed(seed0 + e)
        perm, cursor = torch.empty(0, dtype=torch.long), 0
        losses = []
        x0, y0 = s.train_batch(torch.arange(b))
        c = PLAIN_EVAL_CHUNK[case.model]
        losses += [evaluate(net, x0, y0, c), evaluate(net, s.x_probe, s.y_probe, c)]
        for _ in range(case.episode_steps):
            net.train()
            for _ in range(case.steps_per_action):
                if cursor + b > len(perm):
                    perm, cursor = torch.randperm(s.train_size, generator=order), 0
                x, y = s.train_batch(perm[cursor : cursor + b])
                cursor += b
                loss = F.cross_entropy(net(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(loss.detach())
            losses.append(evaluate(net, s.x_probe, s.y_probe, c))
        losses += [evaluate(net, s.x_val, s.y_val, c), evaluate(net, s.x_test, s.y_test, c)]
        if not all(np.isfinite(float(v)) for v in losses):
            raise RuntimeError(f"{case.model}: the plain loop diverged")
    return time.perf_counter() - start


def train_throughput(s: DataSplits, case: Case, batch: int = 1000) -> float:
    """Images per second of bare optimizer steps (forward, backward, Adam) at batch `batch`."""
    spec = s.spec
    torch.manual_seed(0)
    net = build_model(case.model, spec.channels, spec.image_size, spec.num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=INITIAL_LR)
    net.train()
    rows = torch.randperm(s.train_size, generator=torch.Generator().manual_seed(0))

    def steps(n: int) -> None:
        for i in range(n):
            first = (i * batch) % (s.train_size - batch + 1)
            x, y = s.train_batch(rows[first : first + batch])
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    steps(2)  # warm-up: allocator and kernel selection
    start = time.perf_counter()
    steps(case.throughput_steps)
    return case.throughput_steps * batch / (time.perf_counter() - start)


# ----- the vector env: N trainees as one batched model ------------------------------------------------------
VECTOR_CASES = {
    # conf/env/demo.yaml's task: the MLP, 30 env steps of 5 optimizer steps at batch 1000, a 1000-image probe.
    "mlp_demo": {"model": "mlp", "val_probe": 1000, "batch_size": 1000, "steps_per_action": 5, "episode_steps": 30},
    # The paper's CNN on a 10k training subset, batch 128, 1280-image probe (issue 8's CPU case).
    "cnn": {
        "model": "cnn",
        "train_size": 10000,
        "val_size": 2000,
        "test_size": 2000,
        "val_probe": 1280,
        "batch_size": 128,
        "steps_per_action": 1,
        "episode_steps": 8,
    },
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_vector(venv, vector_steps: int) -> float:
    """Seconds for `vector_steps` steps of the VecEnv (zero actions: the rate stays; autoreset included)."""
    action = np.zeros((venv.num_envs, 1), dtype=np.float32)
    venv.reset()
    _sync(venv.device if hasattr(venv, "device") else torch.device("cpu"))
    start = time.perf_counter()
    for _ in range(vector_steps):
        venv.step_async(action)
        _, _, _, infos = venv.step_wait()
    if any(i.get("diverged") for i in infos):
        raise RuntimeError("a trainee diverged: it did less work than the bare loop")
    _sync(venv.device if hasattr(venv, "device") else torch.device("cpu"))
    return time.perf_counter() - start


def run_bare(population, cfg, vector_steps: int, seed0: int) -> float:
    """The same batched training without features, rewards or bookkeeping: train K steps, the probe loss fetched
    once per step, full validation and test at each episode's end, the trainees restarted."""
    from rlsched.env.population import trainee_seeds

    n = population.n

    def start_all(episode: int) -> None:
        seeds = [trainee_seeds(seed0 + episode * n + row, cfg.split_seed) for row in range(n)]
        population.start_rows(range(n), seeds)
        population.first_batch(range(n)).loss.cpu()
        population.probe().loss.cpu()

    start_all(0)
    _sync(population.device)
    start = time.perf_counter()
    t, episode = 0, 0
    for _ in range(vector_steps):
        population.train(cfg.steps_per_action)
        population.probe().loss.cpu()
        t += 1
        if t == cfg.episode_steps:
            population.evaluate_split(range(n), "val")
            population.evaluate_split(range(n), "test")
            episode, t = episode + 1, 0
            start_all(episode)
    _sync(population.device)
    return time.perf_counter() - start


def bench_vector(
    name: str, n: int, data_dir: str, device: str, repeats: int, episodes: int, dummy: bool, precision: str
) -> dict:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from rlsched.env.lr_control import EnvConfig
    from rlsched.env.population import BatchedPopulation
    from rlsched.env.vector import LRControlVecEnv

    kw = {**VECTOR_CASES[name], "initial_lr": INITIAL_LR, "data_dir": data_dir, "device": device}
    kw["precision"] = precision
    cfg = EnvConfig.from_kwargs(**kw)
    steps = cfg.episode_steps * episodes
    venv = LRControlVecEnv(cfg, n, episode_seeds=list(range(10_000)))
    bare = BatchedPopulation(cfg, n, venv.device)
    contenders = {"vector": lambda r: run_vector(venv, steps), "bare": lambda r: run_bare(bare, cfg, steps, 100 * r)}
    if dummy:
        dvec = DummyVecEnv([lambda: LRControlEnv(**kw) for _ in range(n)])
        contenders["dummy"] = lambda r: run_vector(dvec, steps)
    for fn in contenders.values():  # warm-up: allocator, kernels, data on the device
        fn(99)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    for r in range(repeats):
        order = list(contenders) if r % 2 == 0 else list(reversed(contenders))
        for side in order:
            times[side].append(contenders[side](r))
        print(f"  {name} N={n} repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()))
    med = {k: statistics.median(v) for k, v in times.items()}
    row = {
        "case": name,
        "precision": precision,
        "n": n,
        "device": str(venv.device),
        "vector_steps": steps,
        "times_s": times,
        "env_steps_per_s": {k: n * steps / v for k, v in med.items()},
        "vector_over_bare": med["vector"] / med["bare"],
    }
    if dummy:
        row["vector_over_dummy"] = med["vector"] / med["dummy"]
    return row


def device_name(device: str) -> str:
    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return torch.cuda.get_device_name()
    return machine()["cpu"]


def vector_table(rows: list[dict]) -> str:
    lines = [
        "| case | device | precision | N | env steps/s (vector env) | env steps/s (bare batched loop) "
        "| vector / bare time | env steps/s (N envs in a DummyVecEnv) |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        sps = r["env_steps_per_s"]
        dummy = f"{sps['dummy']:,.0f}" if "dummy" in sps else "-"
        lines.append(
            f"| {r['case']} | {r['device_name']} | {r['precision']} | {r['n']} | {sps['vector']:,.0f} "
            f"| {sps['bare']:,.0f} | {r['vector_over_bare']:.3f} | {dummy} |"
        )
    return "\n".join(lines)


def main_vector(args) -> int:
    rows = []
    start = time.perf_counter()
    for name in args.cases:
        for n in args.n:
            dummy = args.dummy_up_to is not None and n <= args.dummy_up_to
            row = bench_vector(name, n, args.data_dir, args.device, args.repeats, args.episodes, dummy, args.precision)
            row["device_name"] = device_name(args.device)
            rows.append(row)
            print(f"[bench] {name} N={n}: {row['env_steps_per_s']} ({time.perf_counter() - start:.0f}s)", flush=True)
    md = vector_table(rows)
    print()
    print(md)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "results": rows, "table": md}, indent=2))
    print(f"wrote {args.out}")
    return 0


# ----- driver -----------------------------------------------------------------------------------------------
def bench_case(name: str, case: Case, data_dir: str, repeats: int) -> dict:
    kwargs = case.env_kwargs(data_dir)
    env = gym.make("rlsched/LRControl-v1", **kwargs)
    s = make_splits(
        "fashion_mnist",
        split_seed=0,
        data_dir=data_dir,
        train_size=case.train_size,
        val_size=case.val_size,
        val_probe=case.val_probe,
        test_size=case.test_size,
    )
    # Warm-up outside the timings: data already loaded, first-call costs (allocator, kernels) paid.
    warm = Case(**{**asdict(case), "episodes": 1, "episode_steps": 2})
    run_env(gym.make("rlsched/LRControl-v1", **warm.env_kwargs(data_dir)), warm, 999)
    run_plain(s, warm, 999)
    env_times, plain_times = [], []
    for r in range(repeats):
        # Alternate which side goes first so that drift (thermal, other load) hits both alike.
        order = ("env", "plain") if r % 2 == 0 else ("plain", "env")
        for side in order:
            if side == "env":
                env_times.append(run_env(env, case, 100 * r))
            else:
                plain_times.append(run_plain(s, case, 100 * r))
        print(
            f"  {name} repeat {r + 1}/{repeats}: env {env_times[-1]:.2f}s, plain {plain_times[-1]:.2f}s",
            flush=True,
        )
    ips = train_throughput(s, case)
    resplit_ms = resplit_cost_ms(case, data_dir)
    env_med, plain_med = statistics.median(env_times), statistics.median(plain_times)
    return {
        "name": name,
        "case": asdict(case),
        "repeats": repeats,
        "env_s": env_times,
        "plain_s": plain_times,
        "env_median_s": env_med,
        "plain_median_s": plain_med,
        "ratio": env_med / plain_med,
        # Other processes only ever add time, so the fastest run of each side is the least disturbed one.
        "ratio_of_mins": min(env_times) / min(plain_times),
        "median_paired_ratio": statistics.median(e / p for e, p in zip(env_times, plain_times, strict=True)),
        "train_images_per_s": ips,
        "resplit_ms": resplit_ms,
    }


def resplit_cost_ms(case: Case, data_dir: str, n: int = 7) -> float:
    """Median extra reset time of the default per-episode split (split_seed=None) over a fixed split."""
    kw = case.env_kwargs(data_dir)
    fixed, fresh = LRControlEnv(**kw), LRControlEnv(**{**kw, "split_seed": None})
    times: dict[str, list[float]] = {"fixed": [], "fresh": []}
    for i in range(n):
        for name, env in (("fixed", fixed), ("fresh", fresh)):
            t = time.perf_counter()
            env.reset(seed=1000 + i)
            times[name].append(time.perf_counter() - t)
    return 1000 * (statistics.median(times["fresh"]) - statistics.median(times["fixed"]))


def table(rows: list[dict]) -> str:
    lines = [
        "| case | train / probe / val / test | batch | episodes x steps x K | repeats | env s | plain s "
        "| env/plain | env/plain (mins) | train img/s (batch 1000) | re-split per reset |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        c = r["case"]
        sizes = " / ".join(
            str(v) if v is not None else "full"
            for v in (c["train_size"], c["val_probe"], c["val_size"], c["test_size"])
        )
        lines.append(
            f"| {r['name']} | {sizes} | {c['batch_size']} | {c['episodes']} x {c['episode_steps']} x "
            f"{c['steps_per_action']} "
            f"| {r['repeats']} | {r['env_median_s']:.2f} | {r['plain_median_s']:.2f} | {r['ratio']:.3f} "
            f"| {r['ratio_of_mins']:.3f} | {r['train_images_per_s']:,.0f} | {r['resplit_ms']:.0f} ms |"
        )
    return "\n".join(lines)


def default_data_dir() -> str | None:
    env = os.environ.get(DATA_DIR_ENV, "")
    if env:
        return env
    fallback = REPO_ROOT.parent / "shared" / "data"
    return str(fallback) if fallback.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=default_data_dir(), help=f"data root (default: ${DATA_DIR_ENV})")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "results" / "bench_env.json")
    p.add_argument("--mlp-repeats", type=int, default=15, help="interleaved env/plain repeats (MLP cases)")
    p.add_argument("--cnn-repeats", type=int, default=3, help="interleaved env/plain repeats (CNN)")
    p.add_argument("--cases", nargs="+", default=["mlp", "mlp_demo", "cnn"], choices=["mlp", "mlp_demo", "cnn"])
    p.add_argument("--mlp-steps", type=int, default=30)
    p.add_argument("--mlp-episodes", type=int, default=3)
    p.add_argument("--mlp-probe", type=int, default=2000)
    p.add_argument("--cnn-steps", type=int, default=8)
    p.add_argument("--cnn-episodes", type=int, default=1)
    p.add_argument("--cnn-train-size", type=int, default=10000)
    p.add_argument("--cnn-probe", type=int, default=1000)
    p.add_argument("--cnn-val-size", type=int, default=2000)
    p.add_argument("--cnn-test-size", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--vector", action="store_true", help="benchmark the batched vector env instead (below)")
    p.add_argument("--device", default="cpu", help="--vector: cpu, cuda or auto")
    p.add_argument("--n", type=int, nargs="+", default=[1, 8, 64, 256], help="--vector: population sizes")
    p.add_argument("--repeats", type=int, default=3, help="--vector: interleaved repeats")
    p.add_argument("--episodes", type=int, default=2, help="--vector: episodes per timing (autoresets included)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "tf32", "bf16"], help="--vector: trainee precision")
    p.add_argument("--dummy-up-to", type=int, default=8, help="--vector: also time N single envs up to this N")
    args = p.parse_args(argv)
    if not args.data_dir:
        p.error(f"no data root: set {DATA_DIR_ENV} or pass --data-dir")
    if args.vector:
        bad = [c for c in args.cases if c not in VECTOR_CASES]
        if bad:
            p.error(f"--vector cases are {list(VECTOR_CASES)}, got {bad}")
        return main_vector(args)

    cases = {
        "mlp": Case(
            "mlp",
            None,
            None,
            None,
            args.mlp_probe,
            args.batch_size,
            args.mlp_steps,
            args.mlp_episodes,
            throughput_steps=40,
        ),
        # conf/env/demo.yaml's episode: 30 env steps of 5 optimizer steps, a 1000-image probe.
        "mlp_demo": Case("mlp", None, None, None, 1000, args.batch_size, 30, 1, 40, steps_per_action=5),
        "cnn": Case(
            "cnn",
            args.cnn_train_size,
            args.cnn_val_size,
            args.cnn_test_size,
            args.cnn_probe,
            args.batch_size,
            args.cnn_steps,
            args.cnn_episodes,
            throughput_steps=4,
        ),
    }
    info = machine()
    print(
        f"machine: {info['cpu']} ({info['cpu_count']} CPUs), torch {info['torch']}, "
        f"{info['torch_threads']} torch threads, Python {info['python']}, "
        f"load average {info['load_average_1_5_15min']}",
        flush=True,
    )
    start = time.perf_counter()
    repeats = {"mlp": args.mlp_repeats, "mlp_demo": args.mlp_repeats, "cnn": args.cnn_repeats}
    rows = [bench_case(name, cases[name], args.data_dir, repeats[name]) for name in args.cases]
    md = table(rows)
    print()
    print(md)
    print(
        f"\n(env s, plain s: medians of interleaved repeats; env/plain: their ratio, target <= 1.05; "
        f"(mins): ratio of the fastest runs; total {time.perf_counter() - start:.0f}s)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    info["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    print(f"load average before {info['load_average_1_5_15min']}, after {info['load_average_after']}")
    args.out.write_text(
        json.dumps(
            {"machine": info, "initial_lr": INITIAL_LR, "plain_eval_chunk": PLAIN_EVAL_CHUNK, "results": rows}
            | {"table": md},
            indent=2,
        )
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
