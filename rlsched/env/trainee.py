"""The network being trained: model, optimizer and data order, advanced K optimizer steps at a time.

The controller drives the learning rate of the whole network, or (`controlled_params`) of the parameters under
some modules only, the others keeping a fixed rate; the observed layers then come from the controlled ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from rlsched.env.data import DataSplits
from rlsched.env.models import TraineeNet, build_model, build_optimizer, has_eval_mode
from rlsched.env.precision import precision_scope

NamedParams = list[tuple[str, nn.Parameter]]
# Module names listed in the error for an unknown prefix, at most.
MAX_LISTED_MODULES = 40


def _under(name: str, prefix: str) -> bool:
    """`name` is the prefix itself or lies below it ("fc1" matches "fc1.weight", not "fc10.weight")."""
    return name == prefix or name.startswith(prefix + ".")


def module_names(net: nn.Module) -> list[str]:
    """The names of the modules that hold parameters (themselves or below): what `controlled_params` may name."""
    return [n for n, m in net.named_modules() if n and next(m.parameters(), None) is not None]


def split_params(net: nn.Module, prefixes: Sequence[str]) -> tuple[NamedParams, NamedParams]:
    """(controlled, other) named parameters, each in the model's order: controlled are those under a prefix."""
    named = list(net.named_parameters())
    unmatched = [p for p in prefixes if not any(_under(n, p) for n, _ in named)]
    if unmatched:
        # The outer two levels: a ResNet's every convolution would bury the names one would choose.
        names = [n for n in module_names(net) if n.count(".") <= 1]
        shown = names[:MAX_LISTED_MODULES] + (["..."] if len(names) > MAX_LISTED_MODULES else [])
        raise ValueError(
            f"controlled_params {list(unmatched)} match no parameter of {type(net).__name__}; name modules of the "
            f"trainee, e.g. {shown}"
        )
    controlled = [(n, p) for n, p in named if any(_under(n, pre) for pre in prefixes)]
    other = [(n, p) for n, p in named if not any(_under(n, pre) for pre in prefixes)]
    return controlled, other


def observed_of(controlled: NamedParams) -> tuple[nn.Parameter, nn.Parameter]:
    """The (penultimate, last) observed parameters of a controlled group, chosen as `TraineeNet.feature_params`
    chooses for a whole network: the last two dense (2-D) weights, or the weight and bias of the only one."""
    dense = [(n, p) for n, p in controlled if p.dim() == 2]
    if len(dense) >= 2:
        return dense[-2][1], dense[-1][1]
    names = [n for n, _ in controlled]
    if len(dense) == 1:
        weight_name, weight = dense[0]
        bias_name = weight_name.removesuffix("weight") + "bias"
        bias = dict(controlled).get(bias_name)
        if weight_name.endswith("weight") and bias is not None:
            return weight, bias
        raise ValueError(
            f"the controlled parameters {names} hold one dense weight ({weight_name}) without its bias, so the "
            "observed layers cannot be chosen; control the whole layer (its module name) or a second dense layer"
        )
    raise ValueError(
        f"the controlled parameters {names} hold no dense (2-D) weight, so the observed layers cannot be chosen; "
        "include a Linear layer in controlled_params (e.g. the output layer)"
    )


@torch.no_grad()
def evaluate(
    net: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean cross-entropy, accuracy, logits) of `net` in eval mode, in chunks of `chunk` rows. The inputs move to
    the model's device; the model's train/eval mode is restored, so a training loop's next step runs as it would."""
    was_training = net.training
    device = next(net.parameters()).device
    x, y = x.to(device), y.to(device)
    net.eval()
    try:
        chunks = [net(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    finally:
        net.train(was_training)
    logits = (chunks[0] if len(chunks) == 1 else torch.cat(chunks)).float()  # float32 under bf16 autocast too
    loss = F.cross_entropy(logits, y)
    # max().indices, not argmax(): the same predictions, about 3x faster on CPU for few classes.
    acc = (logits.max(1).indices == y).float().mean()
    return loss, acc, logits


@dataclass
class StepResult:
    """Tensors (not floats) so the caller decides when to synchronise with the device."""

    train_loss: torch.Tensor  # mean loss over the K optimizer steps
    last_logits: torch.Tensor  # logits of the last training batch, before its update


class Trainee:
    """A network, its optimizer and its data order. `controlled_params` (module-name prefixes; None: the whole
    network) names the parameters whose rate `set_lr` sets; the others form a second param group at `other_lr`
    (None: `lr`), which nothing changes."""

    def __init__(
        self,
        splits: DataSplits,
        *,
        model: str,
        model_kwargs: dict,
        optimizer: str,
        lr: float,
        batch_size: int,
        momentum: float,
        weight_decay: float,
        init_seed: int,
        order_seed: int,
        device: torch.device,
        eval_batch_size: int,
        controlled_params: Sequence[str] | None = None,
        other_lr: float | None = None,
        precision: str | None = None,
    ):
        if batch_size > splits.train_size:
            raise ValueError(f"batch_size={batch_size} exceeds the training split ({splits.train_size})")
        self.splits = splits
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.device = device
        self.precision = precision
        spec = splits.spec
        # Build under a forked RNG: initialization depends on init_seed alone, and the caller's global
        # RNG stream is left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.net: TraineeNet = build_model(model, spec.channels, spec.image_size, spec.num_classes, **model_kwargs)
        self.net.to(device)
        # The same Parameter objects for the whole run (optimizers update them in place), looked up once.
        if controlled_params is None:
            self.observed_params = self.net.feature_params()
            params = self.net.parameters()
        else:
            controlled, other = split_params(self.net, controlled_params)
            self.observed_params = observed_of(controlled)
            # The controlled group first: set_lr writes group 0. A prefix set covering every parameter leaves a
            # single group, as without controlled_params.
            params = [{"params": [p for _, p in controlled]}]
            if other:
                params.append({"params": [p for _, p in other], "lr": lr if other_lr is None else other_lr})
        self.opt = build_optimizer(optimizer, params, lr, momentum, weight_decay)
        self._eval_switch = has_eval_mode(self.opt)
        self.controlled_group = self.opt.param_groups[0]
        self.batches_per_epoch = splits.train_size // batch_size
        self._order = torch.Generator().manual_seed(int(order_seed))
        self._perm = torch.empty(0, dtype=torch.long)
        self._cursor = 0
        self.optimizer_steps = 0

    @classmethod
    def from_config(
        cls,
        cfg,
        splits: DataSplits,
        *,
        init_seed: int,
        order_seed: int,
        device: torch.device,
        eval_batch_size: int | None = None,
    ) -> Trainee:
        """The trainee an `rlsched.env.lr_control.EnvConfig` describes, on `splits`, with the given seeds (and
        evaluation chunk: null, the config's eval_batch_size)."""
        return cls(
            splits,
            model=cfg.model,
            model_kwargs=cfg.model_kwargs,
            optimizer=cfg.optimizer,
            lr=cfg.initial_lr,
            batch_size=cfg.batch_size,
            momentum=cfg.momentum,
            weight_decay=cfg.weight_decay,
            init_seed=init_seed,
            order_seed=order_seed,
            device=device,
            eval_batch_size=cfg.eval_batch_size if eval_batch_size is None else eval_batch_size,
            controlled_params=cfg.controlled_params,
            other_lr=cfg.other_lr,
            precision=cfg.precision,
        )

    def set_lr(self, lr: float) -> None:
        """The controlled parameters' rate (all parameters' without controlled_params)."""
        self.controlled_group["lr"] = lr

    def _next_rows(self) -> torch.Tensor:
        # Epoch-wise reshuffle, dropping the ragged last batch so every batch has the same size (the
        # prediction-change feature compares two batches element by element).
        if self._cursor + self.batch_size > len(self._perm):
            self._perm = torch.randperm(self.splits.train_size, generator=self._order).to(self.device)
            self._cursor = 0
        rows = self._perm[self._cursor : self._cursor + self.batch_size]
        self._cursor += self.batch_size
        return rows

    def train(self, k: int) -> StepResult:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.net.train()
        losses = []
        for _ in range(k):
            x, y = self.splits.train_batch(self._next_rows())
            with precision_scope(self.precision, self.device):
                logits = self.net(x)
                loss = F.cross_entropy(logits, y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            losses.append(loss.detach())
            self.optimizer_steps += 1
        train_loss = losses[0] if k == 1 else torch.stack(losses).mean()
        return StepResult(train_loss=train_loss.float(), last_logits=logits.detach().float())

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mean loss, accuracy, logits) in eval mode, in chunks of eval_batch_size. A schedule-free optimizer is
        switched to its evaluation weights for it and back to its training weights after."""
        if not self._eval_switch:
            with precision_scope(self.precision, self.device):
                return evaluate(self.net, x, y, self.eval_batch_size)
        self.opt.eval()
        try:
            with precision_scope(self.precision, self.device):
                return evaluate(self.net, x, y, self.eval_batch_size)
        finally:
            self.opt.train()
