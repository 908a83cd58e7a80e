"""``shiftlab demo``: what ``make demo`` runs."""

from __future__ import annotations

from pathlib import Path

import typer

from shiftlab.cli.common import command
from shiftlab.cli.progress import RichPresenter


@command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="where the demo writes its model, store and report"),
    limit: int = typer.Option(200, min=1, help="evaluate every model on the first N test images"),
) -> None:
    """Train a quick small-cnn, run the five core suites on it and on the zoo, write the report (the README's `make demo`)."""
    from shiftlab.app.demo import run_demo

    run_demo(out, RichPresenter(), limit)
