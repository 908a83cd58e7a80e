"""``shiftlab train``: train a model with a registered recipe.

Under ``torchrun --nproc-per-node N -m shiftlab train ...`` every process trains its share of each
global batch (``training/distributed.py``); rank 0 alone shows progress, prints the result and reports
user errors (the other ranks hit the same ones and exit quietly with the same code).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import typer

from shiftlab.cli.common import command, console
from shiftlab.cli.progress import train_progress
from shiftlab.core.devices import rank_device, resolve_device
from shiftlab.core.errors import UserError


def parse_kv(items: list[str] | None, flag: str) -> tuple[tuple[str, str], ...]:
    """``key=value`` items as pairs; anything else is a one-line error."""
    out = []
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UserError(f"{flag} expects key=value, got {item!r}")
        out.append((key.strip(), value.strip()))
    return tuple(out)


@command()
def train(
    model: str = typer.Option("small-cnn", help="architecture (see `shiftlab list models`)"),
    model_option: list[str] = typer.Option(None, "--model-option",
                                           help="architecture option as key=value (repeatable), e.g. width=16"),
    dataset: str = typer.Option("fashion-mnist", help="dataset (see `shiftlab list datasets`)"),
    recipe: str = typer.Option("erm", help="training recipe (see `shiftlab list recipes`)"),
    recipe_arg: list[str] = typer.Option(None, "--recipe-arg", help="recipe hyper-parameter as key=value (repeatable)"),
    epochs: int = typer.Option(3, help="passes over the training split"),
    batch_size: int = typer.Option(128, help="images per step"),
    optimizer: str = typer.Option("sgd", help="sgd or adamw"),
    lr: float = typer.Option(None, help="learning rate (default 0.1 for sgd, 2e-3 for adamw)"),
    weight_decay: float = typer.Option(5e-4),
    schedule: str = typer.Option("onecycle", help="onecycle, cosine or constant"),
    label_smoothing: float = typer.Option(0.0),
    seed: int = typer.Option(0),
    out: Path = typer.Option(None, help="run directory (default runs/<model>-<recipe>)"),
    data_root: Path = typer.Option(None, help="where the dataset's files are"),
    download: bool = typer.Option(False, help="download the dataset when it is missing (checksums verified)"),
    train_limit: int = typer.Option(None, help="train on the first N training images only"),
    device: str = typer.Option("auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps"),
    resume: bool = typer.Option(False, help="continue the interrupted run in --out"),
    ema: float = typer.Option(None, help="EMA decay of the weights (e.g. 0.999); the average is saved"),
    select: str = typer.Option(None, help="keep the best epoch by validation accuracy: clean, corruption or adversarial"),
    amp: str = typer.Option(None, help="mixed precision: bf16 or fp16 (fp16 with loss scaling, CUDA only; "
                                       "bf16 also runs on the CPU, slowly without bf16 hardware)"),
    channels_last: bool = typer.Option(False, "--channels-last", help="weights and batches in channels-last layout"),
) -> None:
    """Train a model with a registered recipe; a checkpoint every epoch, --resume continues.
    Under torchrun, each process trains an equal share of every --batch-size batch."""
    from shiftlab.core.progress import NullProgress
    from shiftlab.training import TrainConfig
    from shiftlab.training import train as run_train
    from shiftlab.training.distributed import Distributed, local_batch_size

    dist = Distributed.from_environment(os.environ)
    try:
        local_batch_size(batch_size, dist.world_size)
        resolved = (rank_device(device, dist.local_rank, dist.local_world_size) if dist.active
                    else resolve_device(device))
        config = TrainConfig(
            model=model, model_options=parse_kv(model_option, "--model-option"), dataset=dataset, recipe=recipe,
            recipe_args=parse_kv(recipe_arg, "--recipe-arg"),
            epochs=epochs, batch_size=batch_size, optimizer=optimizer,  # type: ignore[arg-type]
            lr=lr, weight_decay=weight_decay, schedule=schedule,  # type: ignore[arg-type]
            label_smoothing=label_smoothing, seed=seed, out=str(out or Path("runs") / f"{model.replace(':', '-')}-{recipe}"),
            device=str(resolved), data_root=str(data_root) if data_root else None, train_limit=train_limit,
            ema=ema, select=select, download=download, amp=amp, channels_last=channels_last,
        )
        shown = train_progress() if dist.is_main else contextlib.nullcontext(NullProgress())
        with shown as progress:
            result = run_train(config, progress, resume=resume, distributed=dist)
    except UserError:
        if dist.is_main:
            raise
        raise typer.Exit(2) from None  # rank 0 reports it
    if not dist.is_main:
        return
    t = result.card.training
    console.print(f"[green]trained[/] {config.model} ({config.recipe}) on {config.dataset}: test accuracy "
                  f"{t['test_accuracy']:.1%}, {t['train_seconds']:.0f}s training; checkpoint {result.checkpoint}",
                  highlight=False)
