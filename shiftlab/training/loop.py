"""The training loop: any registered recipe, SGD or AdamW, cosine / one-cycle / constant schedule,
label smoothing, optional EMA weight averaging (``ema``) and robust early stopping (``select``,
Rice et al. 2020, arXiv:2002.11569), a checkpoint every epoch and exact resume at epoch boundaries.

Exactness: the data order of epoch e comes from a generator derived from (seed, e), each step's
recipe randomness from (seed, e, step), and global-RNG users (initialisation, dropout) run inside
``isolated_global_rng``; so an interrupted run resumed from its last epoch checkpoint ends with the
same weights as an uninterrupted one.
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
def evaluate_accuracy(model: nn.Module, data: ImageDataset, batch_size: int, device: str) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``model`` (eval mode) on ``data``."""
    was_training = model.training
    model.eval()
    try:
        correct, loss, n = 0, 0.0, 0
        for x, y in iterate_batches(data, max(batch_size, 256), device=device):
            logits = model(x)
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
) -> dict[str, float]:
    steps = num_batches(data, config.batch_size, drop_last=True)
    total = steps * config.epochs
    order = make_generator(config.seed, "order", epoch)
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    progress.epoch_start(epoch, config.epochs, steps)
    batches = iterate_batches(data, config.batch_size, shuffle=True, generator=order, device=config.device, drop_last=True)
    for step, (x, y) in enumerate(batches):
        lr = learning_rate_at(config, epoch * steps + step, total)
        for group in optimizer.param_groups:
            group["lr"] = lr
        ctx = StepContext(
            generator=make_generator(config.seed, "step", epoch, step, device=config.device),
            epoch=epoch,
            step=step,
            steps_per_epoch=steps,
            epochs=config.epochs,
            label_smoothing=config.label_smoothing,
            num_classes=int(data.info.num_classes),
        )
        out = recipe.step(model, x, y, ctx)
        if not torch.isfinite(out.loss):
            raise UserError(f"training diverged (loss {float(out.loss)}) at epoch {epoch + 1} step {step}; lower --lr")
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        if average is not None:
            average.update(model)
        batch_correct = int((out.logits.detach()[: len(y)].argmax(1) == y).sum())
        loss_sum += float(out.loss.detach()) * len(y)
        correct += batch_correct
        seen += len(y)
        progress.step(float(out.loss.detach()), batch_correct / len(y))
    return {"train_loss": loss_sum / max(1, seen), "train_accuracy": correct / max(1, seen)}


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


def train(config: TrainConfig, progress: TrainProgress | None = None, resume: Resume = False) -> TrainResult:
    """Train ``config.model`` with ``config.recipe``; write a checkpoint every epoch into ``config.out``.

    ``resume``: False starts a run (an existing one in ``out`` is an error), True continues the run in
    ``out`` (none there is an error), "auto" continues it when there is one and starts one otherwise.
    """
    progress = progress or LogProgress()
    out = Path(config.out).expanduser()
    state_path = out / STATE_NAME
    root = Path(config.data_root).expanduser() if config.data_root else None
    train_data = load_dataset(config.dataset, "train", root=root, seed=config.seed, val_fraction=config.val_fraction,
                              limit=config.train_limit, download=config.download)
    val_data = load_dataset(config.dataset, "val", root=root, seed=config.seed, val_fraction=config.val_fraction)
    recipe = build_recipe(config.recipe, dict(config.recipe_args))
    model_config = config_for(config.model, train_data.info, **dict(config.model_options))
    with isolated_global_rng(derive_seed(config.seed, "init")):
        model = build_model(model_config)
    recipe.setup(model)
    model.to(config.device)
    optimizer = make_optimizer(config, model)
    average = WeightAverage(model, config.ema) if config.ema is not None else None
    averaged = copy.deepcopy(model) if average is not None else model  # the model that is validated
    best = BestCheckpoint() if config.select is not None else None
    selected = copy.deepcopy(model) if best is not None else model  # holds the best epoch's weights
    scorer = (ValidationScorer(config.select, val_data, config.device, config.seed,  # type: ignore[arg-type]
                               limit=config.select_limit, eps=config.select_eps) if config.select else None)

    history: list[dict[str, float]] = []
    start_epoch = 0
    if resume is True and not state_path.exists():
        raise UserError(f"--resume: {out} holds no training run to continue; drop --resume to start one")
    if state_path.exists():
        if not resume:
            raise UserError(f"{out} already holds a training run; pass --resume to continue it or choose another --out")
        state = _load_state(state_path)
        stored = json.loads(state["config"])
        if stored != config.identity():
            raise UserError(f"--resume: the run in {out} was started with other settings: "
                            f"{settings_diff(stored, config.identity())}; use the same flags or another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"])
        if average is not None:
            average.load_state_dict(state["ema"])
        if best is not None:
            best.load_state_dict(state["best"])
        finished = _finished(out, start_epoch, config)
        if finished is not None:  # resuming a run that already ended: its checkpoint is the result
            return TrainResult(out, finished, history, start_epoch)
    out.mkdir(parents=True, exist_ok=True)

    card = ModelCard(
        config=model_config,
        name=config.name or out.name,
        dataset=config.dataset,
        recipe={"name": config.recipe, "args": recipe.to_dict()},
    )
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        with isolated_global_rng(derive_seed(config.seed, "epoch", epoch)):
            row = _train_epoch(config, model, recipe, optimizer, train_data, epoch, progress, average)
        row["seconds"] = time.perf_counter() - t0
        if average is not None:
            average.copy_to(averaged)
        val = evaluate_accuracy(averaged, val_data, config.batch_size, config.device)
        row.update({"epoch": float(epoch + 1), "val_accuracy": val["accuracy"], "val_loss": val["loss"]})
        saved = averaged
        if best is not None and scorer is not None:
            row["select_score"] = scorer.score(averaged)
            best.offer(row["select_score"], epoch + 1, averaged.state_dict())
            selected.load_state_dict(best.state or averaged.state_dict())
            saved = selected
        history.append(row)
        card.training = {"config": config.to_dict(), "history": history, "epochs_done": epoch + 1,
                         **_selection_info(config, best)}
        save_checkpoint(out, saved, card)
        extra = {"ema": average.state_dict() if average else None, "best": best.state_dict() if best else None}
        _save_state(state_path, model, optimizer, epoch + 1, history, config, extra)
        progress.epoch_end(row)

    saved = selected if best is not None else averaged
    if best is not None and best.state is not None:
        selected.load_state_dict(best.state)
    elif average is not None:
        average.copy_to(averaged)
    test_data = load_dataset(config.dataset, "test", root=root)
    test = evaluate_accuracy(saved, test_data, config.batch_size, config.device)
    card.training = {
        "config": config.to_dict(),
        "data": {"train": train_data.describe(), "val": val_data.describe(), "test": test_data.describe()},
        "history": history,
        "epochs_done": config.epochs,
        "train_seconds": sum(r["seconds"] for r in history),
        "val_accuracy": history[(best.epoch if best is not None else len(history)) - 1]["val_accuracy"],
        "test_accuracy": test["accuracy"],
        **_selection_info(config, best),
    }
    card = save_checkpoint(out, saved, card)
    model.eval()
    saved.eval()
    return TrainResult(out, card, history, start_epoch)


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
