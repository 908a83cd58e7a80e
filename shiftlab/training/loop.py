"""The training loop: any registered recipe, SGD or AdamW, cosine / one-cycle / constant schedule,
label smoothing, optional EMA weight averaging (``ema``) and robust early stopping (``select``,
Rice et al. 2020, arXiv:2002.11569), a checkpoint every epoch and exact resume at epoch boundaries.

Exactness: the data order of epoch e comes from a generator derived from (seed, e), each step's
recipe randomness from (seed, e, step), and global-RNG users (initialisation, dropout) run inside
``isolated_global_rng``; so an interrupted run resumed from its last epoch checkpoint ends with the
same weights as an uninterrupted one.

Several processes (``torchrun``, ``training/distributed.py``): the ranks share the epoch's order and
split every global batch of ``batch_size`` images evenly; a rank's recipe randomness and global RNG
are keyed by (seed, e, step, rank) and (seed, e, rank) — recipes draw per batch, so a W-process run
is exactly reproducible for the same W, and equals the one-process run (up to float reduction order)
only for recipes without randomness on models without batch statistics. Rank 0 alone validates,
writes checkpoints and reports; resume works as in one process, every rank loading the same state.
Mixed precision and channels-last: ``training/precision.py``.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from shiftlab.core.errors import CheckpointError, UserError
from shiftlab.core.progress import TrainProgress
from shiftlab.core.seeding import derive_seed, isolated_global_rng, make_generator
from shiftlab.data import ImageDataset, iterate_batches, load_dataset, num_batches
from shiftlab.models import ModelCard, build_model, config_for, read_card, save_checkpoint
from shiftlab.training.averaging import WeightAverage
from shiftlab.training.config import TrainConfig
from shiftlab.training.distributed import (
    SINGLE,
    Distributed,
    average_buffers,
    barrier,
    data_parallel,
    local_batch_size,
    process_group,
    rank_batches,
    sum_over_ranks,
    unwrap,
)
from shiftlab.training.precision import Precision
from shiftlab.training.recipes import Recipe, StepContext, build_recipe
from shiftlab.training.selection import BestCheckpoint, ValidationScorer

log = logging.getLogger(__name__)
STATE_NAME = "train_state.pt"


class LogProgress:
    """Progress through ``logging`` (library default)."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        log.info("epoch %d/%d (%d steps)", epoch + 1, epochs, steps)

    def step(self, loss: float, accuracy: float) -> None:
        pass

    def epoch_end(self, row: dict[str, float]) -> None:
        log.info("epoch %s", row)


@dataclass
class TrainResult:
    """Where the checkpoint is and how training went."""

    checkpoint: Path
    card: ModelCard
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0


def learning_rate_at(config: TrainConfig, step: int, total: int) -> float:
    """The schedule's learning rate at global ``step`` of ``total``."""
    base = config.learning_rate
    t = step / max(1, total)
    if config.schedule == "constant":
        return base
    if config.schedule == "cosine":
        return base * 0.5 * (1 + math.cos(math.pi * t))
    warm = 0.15
    if t < warm:
        return base * (0.04 + 0.96 * t / warm)
    return base * 0.5 * (1 + math.cos(math.pi * (t - warm) / (1 - warm)))


def make_optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.learning_rate, momentum=config.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.learning_rate)


@torch.inference_mode()
def evaluate_accuracy(model: nn.Module, data: ImageDataset, batch_size: int, device: str,
                      precision: Precision | None = None) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` (eval mode) on ``data`` (forwards in the run's precision)."""
    precision = precision or Precision(None, False, device)
    was_training = model.training
    model.eval()
    try:
        correct, loss, n = 0, 0.0, 0
        for x, y in iterate_batches(data, max(batch_size, 256), device=device):
            with precision.autocast():
                logits = model(precision.inputs(x)).float()
            correct += int((logits.argmax(1) == y).sum())
            loss += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
            n += len(y)
        return {"accuracy": correct / max(1, n), "loss": loss / max(1, n)}
    finally:
        model.train(was_training)


def _train_epoch(
    config: TrainConfig,
    model: nn.Module,
    recipe: Recipe,
    optimizer: torch.optim.Optimizer,
    data: ImageDataset,
    epoch: int,
    progress: TrainProgress,
    average: WeightAverage | None = None,
    dist: Distributed = SINGLE,
    precision: Precision | None = None,
) -> dict[str, float]:
    """One epoch; ``model`` is what the recipe calls (the DistributedDataParallel wrapper on several ranks).
    The returned training loss and accuracy are over the whole global batches (summed over the ranks)."""
    precision = precision or Precision(None, False, config.device)
    steps = num_batches(data, config.batch_size, drop_last=True)
    total = steps * config.epochs
    order = make_generator(config.seed, "order", epoch)
    inner = unwrap(model)
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    progress.epoch_start(epoch, config.epochs, steps)
    for step, (x, y) in enumerate(rank_batches(data, config.batch_size, order, config.device, dist)):
        lr = learning_rate_at(config, epoch * steps + step, total)
        for group in optimizer.param_groups:
            group["lr"] = lr
        ctx = StepContext(
            generator=make_generator(config.seed, "step", epoch, step, *dist.key, device=config.device),
            epoch=epoch,
            step=step,
            steps_per_epoch=steps,
            epochs=config.epochs,
            label_smoothing=config.label_smoothing,
            num_classes=int(data.info.num_classes),
        )
        with precision.autocast():
            out = recipe.step(model, precision.inputs(x), y, ctx)
        if not torch.isfinite(out.loss):
            raise UserError(f"training diverged (loss {float(out.loss)}) at epoch {epoch + 1} step {step}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        precision.backward_step(out.loss, optimizer)
        average_buffers(inner, dist)
        if average is not None:
            average.update(inner)
        batch_correct = int((out.logits.detach()[: len(y)].argmax(1) == y).sum())
        loss_sum += float(out.loss.detach()) * len(y)
        correct += batch_correct
        seen += len(y)
        progress.step(float(out.loss.detach()), batch_correct / len(y))
    loss_sum, correct_sum, seen_sum = sum_over_ranks([loss_sum, correct, seen], dist, config.device)
    return {"train_loss": loss_sum / max(1, seen_sum), "train_accuracy": correct_sum / max(1, seen_sum)}


def _save_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int,
                history: list[dict[str, float]], config: TrainConfig, extra: dict[str, Any] | None = None) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": json.dumps(history),
            "config": json.dumps(config.identity(), sort_keys=True),
            **(extra or {}),
        },
        tmp,
    )
    tmp.replace(path)


def _load_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the state file is unusable
        raise CheckpointError(f"cannot resume from {path}: {exc}; delete it to start over") from None
    if not isinstance(state, dict) or "epoch" not in state:
        raise CheckpointError(f"{path} is not a shiftlab training state; delete it to start over")
    return state


Resume = bool | Literal["auto"]


def settings_diff(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    """"epochs 3 (now 5), lr 0.1 (now 0.05)": the settings a resume would change."""
    keys = sorted(set(stored) | set(wanted))
    return ", ".join(f"{k} {stored.get(k)!r} (now {wanted.get(k)!r})" for k in keys if stored.get(k) != wanted.get(k))


def train(config: TrainConfig, progress: TrainProgress | None = None, resume: Resume = False,
          distributed: Distributed | None = None) -> TrainResult:
    """Train ``config.model`` with ``config.recipe``; write a checkpoint every epoch into ``config.out``.

    ``resume``: False starts a run (an existing one in ``out`` is an error), True continues the run in
    ``out`` (none there is an error), "auto" continues it when there is one and starts one otherwise.
    ``distributed``: this process's rank among the processes of one run (``Distributed.from_environment``
    under torchrun); every rank calls ``train`` with the same config and returns rank 0's result.
    """
    dist = distributed or SINGLE
    local_batch_size(config.batch_size, dist.world_size)
    run = _Run.build(config, dist, progress or LogProgress())
    state_path = run.out / STATE_NAME
    if resume is True and not state_path.exists():
        raise UserError(f"--resume: {run.out} holds no training run to continue; drop --resume to start one")
    if state_path.exists():
        if not resume:
            raise UserError(f"{run.out} already holds a training run; pass --resume to continue it or choose another --out")
        run.restore(_load_state(state_path))
        finished = _finished(run.out, run.start_epoch, config)
        if finished is not None:  # resuming a run that already ended: its checkpoint is the result
            return TrainResult(run.out, finished, run.history, run.start_epoch)
    if dist.is_main:
        run.out.mkdir(parents=True, exist_ok=True)
    with process_group(dist, torch.device(config.device)):
        net = data_parallel(run.model, dist, torch.device(config.device))
        for epoch in range(run.start_epoch, config.epochs):
            run.epoch(net, epoch)
        if dist.is_main:
            run.finish()
        barrier(dist)  # the other ranks return what rank 0 wrote
    run.model.eval()
    if dist.is_main:
        return TrainResult(run.out, run.card, run.history, run.start_epoch)
    history = json.loads(_load_state(state_path)["history"])
    return TrainResult(run.out, read_card(run.out), history, run.start_epoch)


@dataclass
class _Run:
    """Everything one process of a training run holds: the data, the model and the copies it is
    validated and saved through, the optimiser, and the history."""

    config: TrainConfig
    dist: Distributed
    progress: TrainProgress
    train_data: ImageDataset
    val_data: ImageDataset
    recipe: Recipe
    card: ModelCard
    model: nn.Module
    precision: Precision
    optimizer: torch.optim.Optimizer
    average: WeightAverage | None
    averaged: nn.Module  # the model that is validated (the EMA copy with --ema)
    best: BestCheckpoint | None
    selected: nn.Module  # holds the best epoch's weights (with --select)
    scorer: ValidationScorer | None
    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 0

    @property
    def out(self) -> Path:
        return Path(self.config.out).expanduser()

    @classmethod
    def build(cls, config: TrainConfig, dist: Distributed, progress: TrainProgress) -> _Run:
        root = Path(config.data_root).expanduser() if config.data_root else None
        train_data = load_dataset(config.dataset, "train", root=root, seed=config.seed,
                                  val_fraction=config.val_fraction, limit=config.train_limit, download=config.download)
        val_data = load_dataset(config.dataset, "val", root=root, seed=config.seed, val_fraction=config.val_fraction)
        recipe = build_recipe(config.recipe, dict(config.recipe_args))
        model_config = config_for(config.model, train_data.info, **dict(config.model_options))
        with isolated_global_rng(derive_seed(config.seed, "init")):
            try:
                model = build_model(model_config)
            except (ValueError, TypeError) as exc:  # an architecture option of the wrong type
                raise UserError(f"{config.model} with options {dict(config.model_options)}: {exc}") from None
        recipe.setup(model)
        model.to(config.device)
        precision = Precision(config.amp, config.channels_last, config.device)
        precision.prepare(model)
        average = WeightAverage(model, config.ema) if config.ema is not None else None
        best = BestCheckpoint() if config.select is not None else None
        scorer = (ValidationScorer(config.select, val_data, config.device, config.seed,  # type: ignore[arg-type]
                                   limit=config.select_limit, eps=config.select_eps)
                  if config.select is not None and dist.is_main else None)
        card = ModelCard(config=model_config, name=config.name or Path(config.out).expanduser().name,
                         dataset=config.dataset, recipe={"name": config.recipe, "args": recipe.to_dict()})
        return cls(config, dist, progress, train_data, val_data, recipe, card, model, precision,
                   make_optimizer(config, model), average, copy.deepcopy(model) if average is not None else model,
                   best, copy.deepcopy(model) if best is not None else model, scorer)

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a saved training state (the same on every rank)."""
        stored = json.loads(state["config"])
        if stored != self.config.identity():
            raise UserError(f"--resume: the run in {self.out} was started with other settings: "
                            f"{settings_diff(stored, self.config.identity())}; use the same flags or another --out")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = json.loads(state["history"])
        self.start_epoch = int(state["epoch"])
        if self.average is not None:
            self.average.load_state_dict(state["ema"])
        if self.best is not None:
            self.best.load_state_dict(state["best"])
        self.precision.load_state_dict(state.get("scaler"))

    def epoch(self, net: nn.Module, epoch: int) -> None:
        """Train one epoch through ``net`` (the DDP wrapper on several ranks); rank 0 then validates and
        writes the checkpoint and the state, and every rank waits for it."""
        config, dist = self.config, self.dist
        t0 = time.perf_counter()
        with isolated_global_rng(derive_seed(config.seed, "epoch", epoch, *dist.key)):
            row = _train_epoch(config, net, self.recipe, self.optimizer, self.train_data, epoch, self.progress,
                               self.average, dist, self.precision)
        row["seconds"] = time.perf_counter() - t0
        row["epoch"] = float(epoch + 1)
        if dist.is_main:
            self._validate_and_save(row)
        barrier(dist)
        self.progress.epoch_end(row)

    def _validate_and_save(self, row: dict[str, float]) -> None:
        config, best = self.config, self.best
        if self.average is not None:
            self.average.copy_to(self.averaged)
        val = evaluate_accuracy(self.averaged, self.val_data, config.batch_size, config.device, self.precision)
        row.update({"val_accuracy": val["accuracy"], "val_loss": val["loss"]})
        saved = self.averaged
        if best is not None and self.scorer is not None:
            row["select_score"] = self.scorer.score(self.averaged)
            best.offer(row["select_score"], int(row["epoch"]), self.averaged.state_dict())
            self.selected.load_state_dict(best.state or self.averaged.state_dict())
            saved = self.selected
        if self.dist.active:
            row["processes"] = float(self.dist.world_size)
        self.history.append(row)
        self.card.training = {"config": config.to_dict(), "history": self.history, "epochs_done": int(row["epoch"]),
                              **_selection_info(config, best)}
        save_checkpoint(self.out, saved, self.card)
        extra = {"ema": self.average.state_dict() if self.average else None,
                 "best": best.state_dict() if best else None, "scaler": self.precision.state_dict()}
        _save_state(self.out / STATE_NAME, self.model, self.optimizer, int(row["epoch"]), self.history, config, extra)

    def finish(self) -> None:
        """The final checkpoint (the best epoch's or the averaged weights) with its test accuracy (rank 0)."""
        config, best = self.config, self.best
        saved = self.selected if best is not None else self.averaged
        if best is not None and best.state is not None:
            self.selected.load_state_dict(best.state)
        elif self.average is not None:
            self.average.copy_to(self.averaged)
        root = Path(config.data_root).expanduser() if config.data_root else None
        test_data = load_dataset(config.dataset, "test", root=root)
        test = evaluate_accuracy(saved, test_data, config.batch_size, config.device, self.precision)
        history = self.history
        self.card.training = {
            "config": config.to_dict(),
            "data": {"train": self.train_data.describe(), "val": self.val_data.describe(),
                     "test": test_data.describe()},
            "history": history,
            "epochs_done": config.epochs,
            "train_seconds": sum(r["seconds"] for r in history),
            "val_accuracy": history[(best.epoch if best is not None else len(history)) - 1]["val_accuracy"],
            "test_accuracy": test["accuracy"],
            **_selection_info(config, best),
        }
        self.card = save_checkpoint(self.out, saved, self.card)
        saved.eval()


def _selection_info(config: TrainConfig, best: BestCheckpoint | None) -> dict[str, Any]:
    """What the card records about weight averaging and checkpoint selection."""
    info: dict[str, Any] = {}
    if config.ema is not None:
        info["ema_decay"] = config.ema
    if best is not None:
        info["selection"] = {"metric": config.select, "epoch": best.epoch, "score": best.score}
    return info


def _finished(out: Path, epochs_done: int, config: TrainConfig) -> ModelCard | None:
    """The card of a run in ``out`` that completed every epoch of ``config`` (with its test accuracy)."""
    if epochs_done < config.epochs:
        return None
    try:
        card = read_card(out)
    except CheckpointError:
        return None
    done = card.training.get("epochs_done") == config.epochs and "test_accuracy" in card.training
    return card if done else None
