"""A population of N trainees trained in lockstep: one batched model, N learning rates, N data orders.

`BatchedPopulation` stacks the N networks' parameters (leading dimension N) and runs them as one model with
`torch.func.vmap` over `functional_call`: one forward and one backward per optimizer step for all N, and a
per-trainee optimizer (Adam or SGD, the same update rules as `torch.optim`'s single-tensor code) whose learning
rate is a vector. Trainee i is the trainee an `LRControlEnv` reset with the same seeds would build: the same
split, initial weights and data order (`Trainee` stays the single env's exact torch.optim path; the two agree to
float tolerance, tests/test_vector_env.py). Every trainee is independent of the others: a NaN in one stays there.

Models with BatchNorm (the ResNet) keep running statistics that vmap cannot update in place: `LoopPopulation`
steps N ordinary `Trainee`s one after another behind the same interface. `make_population` picks one.

Everything returns tensors on the trainees' device; the caller decides when to synchronise with the host.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from rlsched.env.data import DATASETS, DataSplits, load_normalized, split_indices
from rlsched.env.models import build_model
from rlsched.env.precision import precision_scope
from rlsched.env.trainee import Trainee

BATCHED_OPTIMIZERS = ("adam", "sgd")  # written here as torch's single-tensor updates; the others run as a loop
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults, as build_optimizer uses them


@dataclass
class PopulationStep:
    """One env step of every trainee: tensors with a leading dimension N."""

    train_loss: torch.Tensor  # (N,) mean training loss over the K optimizer steps
    last_logits: torch.Tensor  # (N, B, C) logits of the last training batch, before its update


@dataclass
class Evaluation:
    loss: torch.Tensor  # (N,)
    accuracy: torch.Tensor  # (N,)
    logits: torch.Tensor  # (N, P, C)


@dataclass(frozen=True)
class TraineeSeeds:
    """The three seeds an `LRControlEnv` draws from one episode seed."""

    init: int
    order: int
    split: int


def has_batch_norm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class PopulationSetup:
    """What every population needs from the env config: the data, the model recipe, the optimizer."""

    def __init__(self, cfg, n: int, device: torch.device) -> None:
        if n < 1:
            raise ValueError(f"a population needs n >= 1 trainees, got {n}")
        self.cfg, self.n, self.device = cfg, n, device
        self._splits: dict[int, DataSplits] = {}

    def splits(self, split_seed: int) -> DataSplits:
        """The split of seed `split_seed` (cached: trainees from a fixed split_seed share one)."""
        if split_seed not in self._splits:
            if len(self._splits) >= self.n:  # bound the cache: splits are per episode by default, 31 MB each
                self._splits.clear()
            self._splits[split_seed] = self.cfg.make_splits(split_seed, self.device)
        return self._splits[split_seed]

    def build_net(self, init_seed: int) -> nn.Module:
        """The network `Trainee` builds for `init_seed` (same RNG use), on the CPU."""
        cfg = self.cfg
        spec = DATASETS[cfg.dataset]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            return build_model(cfg.model, spec.channels, spec.image_size, spec.num_classes, **cfg.model_kwargs)


class BatchedPopulation:
    """N trainees as one batched model (see the module docstring). Call `start(i, seeds)` for every row before
    the first `train`; `start` again at any time restarts row i alone."""

    def __init__(self, cfg, n: int, device: torch.device, eval_chunk: int | None = None) -> None:
        self.setup = PopulationSetup(cfg, n, device)
        self.cfg, self.n, self.device = cfg, n, device
        self.batch_size = cfg.batch_size
        if getattr(cfg, "controlled_params", None):
            raise ValueError(
                "a batched population gives every trainee one learning rate; env.controlled_params (per-group "
                "control) needs LoopPopulation (make_population picks it)"
            )
        template = self.setup.build_net(0)
        if has_batch_norm(template):
            raise ValueError(
                f"model {cfg.model!r} has BatchNorm, whose running statistics a vmapped model cannot update; "
                "use LoopPopulation (make_population picks it)"
            )
        self._base = copy.deepcopy(template).to("meta")
        feature = template.feature_params()
        by_id = {id(p): name for name, p in template.named_parameters()}
        self.observed_names = (by_id[id(feature[0])], by_id[id(feature[1])])
        self.params = {
            name: torch.zeros((n, *p.shape), dtype=p.dtype, device=device).requires_grad_()
            for name, p in template.named_parameters()
        }
        self.optimizer = cfg.optimizer
        if self.optimizer not in BATCHED_OPTIMIZERS:
            raise ValueError(
                f"optimizer {self.optimizer!r} has no batched update here (only {list(BATCHED_OPTIMIZERS)}); "
                "use LoopPopulation (make_population picks it)"
            )
        self._state = {name: [torch.zeros_like(p, requires_grad=False)] for name, p in self.params.items()}
        if self.optimizer == "adam":
            for name, p in self.params.items():
                self._state[name].append(torch.zeros_like(p, requires_grad=False))
        self.steps = np.zeros(n, dtype=np.int64)  # optimizer steps taken by each trainee since its start
        self.lrs = np.full(n, float(cfg.initial_lr))
        spec = DATASETS[cfg.dataset]
        self.num_classes = spec.num_classes
        self.eval_chunk = eval_chunk or cfg.eval_batch_size
        # Images stay in the shared pool; each trainee holds only the indices of its split (a DataSplits per trainee
        # would copy its 10k validation images, 31 MB, every episode).
        x_pool, y_pool, x_test, y_test = load_normalized(cfg.dataset, cfg.data_dir, device, cfg.verify_checksums)
        self.x_pool, self.y_pool = x_pool, y_pool
        test_n = len(y_test) if cfg.test_size is None else cfg.test_size
        self.x_test, self.y_test = x_test[:test_n], y_test[:test_n]
        train_idx, val_idx = self._split(0)
        self.train_size, val_size = len(train_idx), len(val_idx)
        self.batches_per_epoch = self.train_size // self.batch_size
        if self.batch_size > self.train_size:
            raise ValueError(f"batch_size={self.batch_size} exceeds the training split ({self.train_size})")
        self.train_idx = torch.zeros((n, self.train_size), dtype=torch.long, device=device)
        self.val_idx = torch.zeros((n, val_size), dtype=torch.long, device=device)
        self.perm = torch.zeros((n, self.train_size), dtype=torch.long, device=device)
        self.probe_x = torch.zeros((n, cfg.val_probe, *x_pool.shape[1:]), device=device)
        self.probe_y = torch.zeros((n, cfg.val_probe), dtype=torch.long, device=device)
        self._orders: list[torch.Generator | None] = [None] * n
        self._cursor = np.full(n, self.train_size, dtype=np.int64)  # forces a fresh permutation at the start
        self._vforward = vmap(self._forward_one)
        self._vforward_shared = vmap(self._forward_one, in_dims=(0, None))  # the same inputs for every trainee

    def _split(self, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        return split_indices(
            cfg.dataset,
            split_seed,
            len(self.y_pool),
            train_size=cfg.train_size,
            val_size=cfg.val_size,
            val_probe=cfg.val_probe,
            data_dir=cfg.data_dir,
        )

    # ----- rows ---------------------------------------------------------------------------------------------
    def start(self, row: int, seeds: TraineeSeeds) -> None:
        """Trainee `row` starts afresh: the split, initial weights and data order of `seeds`, zero optimizer
        state, the initial learning rate."""
        self.start_rows([row], [seeds])

    def start_rows(self, rows: Sequence[int], seeds: Sequence[TraineeSeeds]) -> None:
        """`start` for several rows, with one host-to-device copy per tensor for all of them."""
        rows = list(rows)
        index = self._upload(np.asarray(rows, dtype=np.int64))
        nets = [self.setup.build_net(s.init) for s in seeds]
        splits = [self._split(s.split) for s in seeds]
        with torch.no_grad():
            for name, p in self.params.items():
                stacked = torch.stack([dict(net.named_parameters())[name].detach() for net in nets])
                p.index_copy_(0, index, self._upload(stacked))
            for buffers in self._state.values():
                for b in buffers:
                    b.index_fill_(0, index, 0.0)
            self.train_idx.index_copy_(0, index, self._upload(torch.stack([t for t, _ in splits])))
            self.val_idx.index_copy_(0, index, self._upload(torch.stack([v for _, v in splits])))
            probe = self.val_idx[index, : self.cfg.val_probe]
            self.probe_x.index_copy_(0, index, self.x_pool[probe])
            self.probe_y.index_copy_(0, index, self.y_pool[probe])
        for row, s in zip(rows, seeds, strict=True):
            self._orders[row] = torch.Generator().manual_seed(int(s.order))
        self._cursor[rows] = self.train_size
        self.steps[rows] = 0
        self.lrs[rows] = float(self.cfg.initial_lr)

    def set_lrs(self, lrs: Sequence[float] | np.ndarray) -> None:
        self.lrs = np.asarray(lrs, dtype=np.float64).copy()

    def observed_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(penultimate, last) observed parameters of every trainee, each (N, ...)."""
        return self.params[self.observed_names[0]].detach(), self.params[self.observed_names[1]].detach()

    def net(self, row: int) -> nn.Module:
        """Trainee `row` as an ordinary module (a copy), e.g. for its fingerprint."""
        net = self.setup.build_net(0)
        with torch.no_grad():
            for name, p in net.named_parameters():
                p.copy_(self.params[name][row].detach().cpu())
        return net

    # ----- training -----------------------------------------------------------------------------------------
    def _forward_one(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(self._base, params, (x,))

    def _next_rows(self) -> torch.Tensor:
        """(N, B) positions in each trainee's training split: epoch-wise reshuffles from each trainee's own
        generator, exactly as `Trainee` draws them."""
        stale = np.nonzero(self._cursor + self.batch_size > self.train_size)[0]
        if len(stale):
            perms = torch.stack([torch.randperm(self.train_size, generator=self._orders[row]) for row in stale])
            self.perm.index_copy_(0, self._upload(stale), self._upload(perms))
            self._cursor[stale] = 0
        start = self._upload(self._cursor)
        cols = start[:, None] + torch.arange(self.batch_size, device=self.device)
        self._cursor += self.batch_size
        return self.perm.gather(1, cols)

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.train_idx.gather(1, self._next_rows())
        return self.x_pool[idx], self.y_pool[idx]

    def train(self, k: int) -> PopulationStep:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        losses = []
        for _ in range(k):
            x, y = self._batch()
            with precision_scope(self.cfg.precision, self.device):
                logits = self._vforward(self.params, x).float()
            loss = self._per_trainee_loss(logits, y)
            grads = torch.autograd.grad(loss.sum(), list(self.params.values()))
            self._update(grads)
            losses.append(loss.detach())
        train_loss = losses[0] if k == 1 else torch.stack(losses).mean(0)
        return PopulationStep(train_loss=train_loss, last_logits=logits.detach())

    def _per_trainee_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n, b, c = logits.shape
        return F.cross_entropy(logits.reshape(n * b, c), y.reshape(n * b), reduction="none").view(n, b).mean(1)

    def _upload(self, values: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Host values on the device without waiting for it: on a GPU through pinned memory, asynchronously, so the
        host keeps queueing work (a plain copy from pageable memory would wait for the whole queue)."""
        t = torch.as_tensor(values)
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    @staticmethod
    def _per_row(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return vector.view(-1, *([1] * (like.dim() - 1)))

    @torch.no_grad()
    def _update(self, grads: Sequence[torch.Tensor]) -> None:
        cfg = self.cfg
        self.steps += 1
        # Per-trainee scalars in float64 on the host, as torch.optim computes its Python-float step size, then
        # float32 on the device: the values torch's kernels use. One upload per optimizer step.
        if self.optimizer == "adam":
            beta1, beta2 = ADAM_BETAS
            host = np.stack([self.lrs / (1 - beta1**self.steps), np.sqrt(1 - beta2**self.steps)])
        else:
            host = self.lrs[None]
        scalars = self._upload(host.astype(np.float32))
        for (name, p), g in zip(self.params.items(), grads, strict=True):
            if cfg.weight_decay:
                g = g.add(p, alpha=cfg.weight_decay)
            if self.optimizer == "adam":
                self._adam(p, g, *self._state[name], scalars[0], scalars[1])
            else:
                self._sgd(p, g, self._state[name][0], scalars[0])

    def _adam(
        self, p: torch.Tensor, g: torch.Tensor, m: torch.Tensor, v: torch.Tensor, step_size: torch.Tensor, bc2_sqrt
    ) -> None:
        # torch.optim.Adam's single-tensor update, with the step size and bias correction per trainee.
        beta1, beta2 = ADAM_BETAS
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = v.sqrt().div_(self._per_row(bc2_sqrt, v)).add_(ADAM_EPS)
        # (-1 * (m * step_size)) / denom: the same rounding as torch's addcdiv with value=-step_size.
        p.addcdiv_(m * self._per_row(step_size, p), denom, value=-1.0)

    def _sgd(self, p: torch.Tensor, g: torch.Tensor, buf: torch.Tensor, lr: torch.Tensor) -> None:
        # torch.optim.SGD (no dampening, no Nesterov): a zero buffer makes the first step buf = g, as torch does.
        buf.mul_(self.cfg.momentum).add_(g)
        p.sub_(self._per_row(lr, p) * buf)

    # ----- evaluation ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, rows: Sequence[int] | None = None) -> Evaluation:
        """Each trainee (or each of `rows`) on its own inputs: x (R, M, ...), y (R, M)."""
        return self._evaluate_chunks(lambda i, j: x[:, i:j], y, rows)

    def _evaluate_chunks(self, inputs, y: torch.Tensor, rows: Sequence[int] | None, shared: bool = False) -> Evaluation:
        """`inputs(i, j)` gives images i..j-1 of every row, (R, j-i, ...), or with `shared` the same (j-i, ...)
        images for all rows; chunks sized so that one call sees about `eval_chunk` images in all."""
        params = self.params if rows is None else {k: v[list(rows)] for k, v in self.params.items()}
        params = {k: v.detach() for k, v in params.items()}
        r = len(rows) if rows is not None else self.n
        m = y.shape[-1]
        step = max(1, self.eval_chunk // r)
        forward = self._vforward_shared if shared else self._vforward
        with precision_scope(self.cfg.precision, self.device):
            chunks = [forward(params, inputs(i, min(i + step, m))).float() for i in range(0, m, step)]
        logits = chunks[0] if len(chunks) == 1 else torch.cat(chunks, 1)
        c = logits.shape[-1]
        y = y.expand(r, m)
        loss = F.cross_entropy(logits.reshape(r * m, c), y.reshape(r * m), reduction="none").view(r, m).mean(1)
        acc = (logits.max(-1).indices == y).float().mean(1)
        return Evaluation(loss, acc, logits)

    def probe(self) -> Evaluation:
        return self.evaluate(self.probe_x, self.probe_y)

    def first_batch(self, rows: Sequence[int]) -> Evaluation:
        """The untrained trainees of `rows` on the first training rows of their splits (the env's t=0 input)."""
        idx = self.train_idx[list(rows), : self.batch_size]
        return self.evaluate(self.x_pool[idx], self.y_pool[idx], rows)

    def probe_rows(self, rows: Sequence[int]) -> Evaluation:
        rows = list(rows)
        return self.evaluate(self.probe_x[rows], self.probe_y[rows], rows)

    @torch.no_grad()
    def evaluate_split(self, rows: Sequence[int], which: str) -> tuple[np.ndarray, np.ndarray]:
        """(loss, accuracy) of each trainee in `rows` on its full validation split or on the (shared) test set, as
        host arrays. Validation images are gathered chunk by chunk, never N whole splits at once."""
        rows = list(rows)
        if which == "test":
            ev = self._evaluate_chunks(lambda i, j: self.x_test[i:j], self.y_test[None], rows, shared=True)
        else:
            val_idx = self.val_idx[rows]
            ev = self._evaluate_chunks(lambda i, j: self.x_pool[val_idx[:, i:j]], self.y_pool[val_idx], rows)
        return ev.loss.cpu().numpy(), ev.accuracy.cpu().numpy()


class LoopPopulation:
    """N ordinary `Trainee`s stepped one after another behind `BatchedPopulation`'s interface: for models with
    BatchNorm, and as the exact (torch.optim) reference."""

    def __init__(self, cfg, n: int, device: torch.device, eval_chunk: int | None = None) -> None:
        self.setup = PopulationSetup(cfg, n, device)
        self.cfg, self.n, self.device = cfg, n, device
        self.batch_size = cfg.batch_size
        self.eval_chunk = eval_chunk or cfg.eval_batch_size
        self.trainees: list[Trainee | None] = [None] * n
        self.row_splits: list[DataSplits | None] = [None] * n
        self.lrs = np.full(n, float(cfg.initial_lr))
        self.batches_per_epoch = 0

    def start(self, row: int, seeds: TraineeSeeds) -> None:
        cfg = self.cfg
        splits = self.setup.splits(seeds.split)
        self.row_splits[row] = splits
        self.trainees[row] = Trainee.from_config(
            cfg,
            splits,
            init_seed=seeds.init,
            order_seed=seeds.order,
            device=self.device,
            eval_batch_size=self.eval_chunk,
        )
        self.batches_per_epoch = self.trainees[row].batches_per_epoch
        self.lrs[row] = float(cfg.initial_lr)

    def start_rows(self, rows: Sequence[int], seeds: Sequence[TraineeSeeds]) -> None:
        for row, s in zip(rows, seeds, strict=True):
            self.start(row, s)

    @property
    def steps(self) -> np.ndarray:
        return np.array([t.optimizer_steps for t in self.trainees])

    def set_lrs(self, lrs: Sequence[float] | np.ndarray) -> None:
        self.lrs = np.asarray(lrs, dtype=np.float64).copy()
        for t, lr in zip(self.trainees, self.lrs, strict=True):
            t.set_lr(float(lr))

    def observed_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [t.observed_params for t in self.trainees]
        return torch.stack([p[0].detach() for p in pairs]), torch.stack([p[1].detach() for p in pairs])

    def net(self, row: int) -> nn.Module:
        return self.trainees[row].net

    def train(self, k: int) -> PopulationStep:
        results = [t.train(k) for t in self.trainees]
        return PopulationStep(
            train_loss=torch.stack([r.train_loss for r in results]),
            last_logits=torch.stack([r.last_logits for r in results]),
        )

    def _evaluate_rows(self, rows: Sequence[int], inputs) -> Evaluation:
        evals = [self.trainees[r].evaluate(*inputs(r)) for r in rows]
        return Evaluation(*(torch.stack([e[i] for e in evals]) for i in range(3)))

    def probe(self) -> Evaluation:
        return self.probe_rows(range(self.n))

    def probe_rows(self, rows: Sequence[int]) -> Evaluation:
        return self._evaluate_rows(rows, lambda r: (self.row_splits[r].x_probe, self.row_splits[r].y_probe))

    def first_batch(self, rows: Sequence[int]) -> Evaluation:
        def inputs(r: int):
            return self.row_splits[r].train_batch(torch.arange(self.batch_size, device=self.device))

        return self._evaluate_rows(rows, inputs)

    def evaluate_split(self, rows: Sequence[int], which: str) -> tuple[np.ndarray, np.ndarray]:
        def inputs(r: int):
            s = self.row_splits[r]
            return (s.x_val, s.y_val) if which == "val" else (s.x_test, s.y_test)

        ev = self._evaluate_rows(rows, inputs)
        return ev.loss.cpu().numpy(), ev.accuracy.cpu().numpy()


Population = BatchedPopulation | LoopPopulation


def make_population(cfg, n: int, device: torch.device, kind: str = "auto") -> Population:
    """`kind`: "batched" (one vmapped model), "loop" (N Trainees) or "auto" (batched unless the model has
    BatchNorm, the controller drives one param group only, or the optimizer is not Adam/SGD: only the loop supports
    those)."""
    if kind not in ("auto", "batched", "loop"):
        raise ValueError(f"population kind must be auto, batched or loop, got {kind!r}")
    if kind == "auto":
        spec = DATASETS[cfg.dataset]
        with torch.device("meta"):
            net = build_model(cfg.model, spec.channels, spec.image_size, spec.num_classes, **cfg.model_kwargs)
        loop = has_batch_norm(net) or cfg.controlled_params or cfg.optimizer not in BATCHED_OPTIMIZERS
        kind = "loop" if loop else "batched"
    return (BatchedPopulation if kind == "batched" else LoopPopulation)(cfg, n, device)


def trainee_seeds(episode_seed: int, split_seed: int | None) -> TraineeSeeds:
    """The seeds `LRControlEnv.reset(seed=episode_seed)` draws (its np_random, seeded by the episode seed)."""
    from gymnasium.utils import seeding

    rng, _ = seeding.np_random(int(episode_seed))
    init, order, split = (int(s) for s in rng.integers(0, 2**31 - 1, size=3))
    return TraineeSeeds(init, order, split if split_seed is None else int(split_seed))
