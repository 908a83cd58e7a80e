"""What long-running library code reports progress to; the CLI implements these with Rich.

The library never prints: evaluation reports tasks and images through :class:`EvalProgress`,
training reports epochs and steps through :class:`TrainProgress`. ``NullProgress`` shows nothing.
"""

from __future__ import annotations

from typing import Protocol


class EvalProgress(Protocol):
    """Progress of an evaluation run: its tasks (with an overall count) and the images of each."""

    def run_start(self, label: str, tasks: int) -> None: ...
    def task_start(self, label: str, images: int) -> None: ...
    def advance(self, images: int) -> None: ...
    def task_end(self, label: str, outcome: str) -> None: ...


class TrainProgress(Protocol):
    """Progress of a training run: one bar per epoch, running loss and accuracy."""

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None: ...
    def step(self, loss: float, accuracy: float) -> None: ...
    def epoch_end(self, row: dict[str, float]) -> None: ...


class NullProgress:
    """Shows nothing (the library default for both protocols)."""

    def run_start(self, label: str, tasks: int) -> None:
        pass

    def task_start(self, label: str, images: int) -> None:
        pass

    def advance(self, images: int) -> None:
        pass

    def task_end(self, label: str, outcome: str) -> None:
        pass

    def epoch_start(self, epoch: int, epochs: int, steps: int) -> None:
        pass

    def step(self, loss: float, accuracy: float) -> None:
        pass

    def epoch_end(self, row: dict[str, float]) -> None:
        pass
