"""Rich implementations of the progress protocols and of the app layer's presenter.

An evaluation shows one overall line ("task 37/95" with the run's ETA) above the bar of the task
being computed; training shows one bar per epoch with running loss and accuracy. Bars go to
stderr and vanish when done, so stdout keeps only results.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from shiftlab.cli.common import console, err_console
from shiftlab.cli.render import print_results, print_table
from shiftlab.store import TaskRow

if TYPE_CHECKING:
    from shiftlab.app.zoo.checks import Check
    from shiftlab.app.zoo.table import ZooRow


def make_progress(*extra: Any) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *extra,
                    TimeElapsedColumn(), TimeRemainingColumn(), console=err_console, transient=True)


class RichEvalProgress:
    """The overall task count of a run and the current task's images."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.overall: TaskID | None = None
        self.task: TaskID | None = None

    def run_start(self, label: str, tasks: int) -> None:
        if self.overall is not None:
            self.progress.remove_task(self.overall)
        self.overall = self.progress.add_task(escape(f"{label}: tasks"), total=tasks)

    def task_start(self, label: str, images: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(escape(label), total=images)

    def advance(self, images: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, images)

    def task_end(self, label: str, outcome: str) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        if self.overall is not None:
            self.progress.advance(self.overall, 1)


class RichTrainProgress:
    """Training progress: one bar per epoch with running loss and accuracy."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: TaskID | None = None
        self.loss = 0.0
        self.acc = 0.0

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        self.loss, self.acc = 0.0, 0.0
        self.task = self.progress.add_task(f"epoch {epoch + 1}/{epochs}", total=steps, stats="")

    def step(self, loss: float, accuracy: float) -> None:
        self.loss = 0.9 * self.loss + 0.1 * loss if self.loss else loss
        self.acc = 0.9 * self.acc + 0.1 * accuracy if self.acc else accuracy
        if self.task is not None:
            self.progress.update(self.task, advance=1, stats=f"loss {self.loss:.3f} acc {self.acc:.1%}")

    def epoch_end(self, row: dict[str, float]) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        console.print(f"epoch {int(row['epoch'])}: train loss {row['train_loss']:.4f}, accuracy "
                      f"{row['train_accuracy']:.1%} | validation accuracy {row['val_accuracy']:.1%} | "
                      f"{row['seconds']:.1f}s", highlight=False)


@contextmanager
def eval_progress() -> Iterator[RichEvalProgress]:
    with make_progress() as progress:
        yield RichEvalProgress(progress)


@contextmanager
def train_progress() -> Iterator[RichTrainProgress]:
    with make_progress(TextColumn("{task.fields[stats]}")) as progress:
        yield RichTrainProgress(progress)


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}"


def zoo_rows(rows: Sequence[ZooRow]) -> tuple[list[str], list[list[str]]]:
    from shiftlab.app.zoo.table import HEADLINE

    headers = ["model", "recipe", "train s", *HEADLINE.values()]
    cells = [[r.name, r.recipe, "—" if r.train_seconds is None else f"{r.train_seconds:.0f}",
              *(pct(r.metrics.get(k)) for k in HEADLINE)] for r in rows]
    return headers, cells


class RichPresenter:
    """The app layer's presenter on the terminal."""

    def section(self, title: str) -> None:
        console.rule(f"[bold]{escape(title)}")

    def message(self, text: str) -> None:
        console.print(escape(text), highlight=False, soft_wrap=True)

    def results(self, title: str, rows: Sequence[TaskRow]) -> None:
        print_results(console, title, rows)

    def zoo_table(self, title: str, rows: Sequence[ZooRow]) -> None:
        headers, cells = zoo_rows(rows)
        print_table(console, title, headers, cells, numeric=[False, False, *([True] * (len(headers) - 2))])

    def checks(self, checks: Sequence[Check]) -> None:
        for c in checks:
            mark = {True: "[green]holds[/]", False: "[red]does not hold[/]", None: "[yellow]undecided[/]"}[c.holds]
            console.print(f"{mark}  {escape(c.claim)}: {escape(c.detail)}", soft_wrap=True)

    @contextmanager
    def eval_progress(self) -> Iterator[RichEvalProgress]:
        with eval_progress() as progress:
            yield progress

    @contextmanager
    def train_progress(self) -> Iterator[RichTrainProgress]:
        with train_progress() as progress:
            yield progress

    @contextmanager
    def busy(self, text: str) -> Iterator[None]:
        with err_console.status(escape(text)):
            yield
