"""How workflows talk to the person running them: a small presenter protocol.

The app layer (demo, zoo) never imports the CLI: it reports sections, messages, result rows, the
zoo's table and the literature checks to a :class:`Presenter`, and asks it for progress objects.
The CLI implements it with Rich; :class:`SilentPresenter` shows nothing (library use, worker processes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

from shiftlab.core.progress import EvalProgress, NullProgress, TrainProgress
from shiftlab.store import TaskRow

if TYPE_CHECKING:
    from shiftlab.app.zoo.checks import Check
    from shiftlab.app.zoo.table import ZooRow


class Presenter(Protocol):
    def section(self, title: str) -> None: ...
    def message(self, text: str) -> None: ...
    def results(self, title: str, rows: Sequence[TaskRow]) -> None: ...
    def zoo_table(self, title: str, rows: Sequence[ZooRow]) -> None: ...
    def checks(self, checks: Sequence[Check]) -> None: ...
    def eval_progress(self) -> AbstractContextManager[EvalProgress]: ...
    def train_progress(self) -> AbstractContextManager[TrainProgress]: ...
    def busy(self, text: str) -> AbstractContextManager[None]: ...


class SilentPresenter:
    """Shows nothing."""

    def section(self, title: str) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def results(self, title: str, rows: Sequence[TaskRow]) -> None:
        pass

    def zoo_table(self, title: str, rows: Sequence[ZooRow]) -> None:
        pass

    def checks(self, checks: Sequence[Check]) -> None:
        pass

    @contextmanager
    def eval_progress(self) -> Iterator[EvalProgress]:
        yield NullProgress()

    @contextmanager
    def train_progress(self) -> Iterator[TrainProgress]:
        yield NullProgress()

    @contextmanager
    def busy(self, text: str) -> Iterator[None]:
        yield
