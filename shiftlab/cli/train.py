"""``shiftlab train``: train a model with a registered recipe."""

from __future__ import annotations

from pathlib import Path

import typer

from shiftlab.cli.common import command, console
from shiftlab.cli.progress import train_progress
from shiftlab.core.devices import resolve_device
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
) -> None:
    """Train a model with a registered recipe; a checkpoint every epoch, --resume continues."""
    from shiftlab.training import TrainConfig
    from shiftlab.training import train as run_train

    config = TrainConfig(
        model=model, dataset=dataset, recipe=recipe, recipe_args=parse_kv(recipe_arg, "--recipe-arg"),
        epochs=epochs, batch_size=batch_size, optimizer=optimizer,  # type: ignore[arg-type]
        lr=lr, weight_decay=weight_decay, schedule=schedule,  # type: ignore[arg-type]
        label_smoothing=label_smoothing, seed=seed, out=str(out or Path("runs") / f"{model.replace(':', '-')}-{recipe}"),
        device=str(resolve_device(device)), data_root=str(data_root) if data_root else None, train_limit=train_limit,
        ema=ema, select=select, download=download,
    )
    with train_progress() as progress:
        result = run_train(config, progress, resume=resume)
    t = result.card.training
    console.print(f"[green]trained[/] {config.model} ({config.recipe}) on {config.dataset}: test accuracy "
                  f"{t['test_accuracy']:.1%}, {t['train_seconds']:.0f}s training; checkpoint {result.checkpoint}",
                  highlight=False)
