"""Suites, tasks and the evaluation context.

A suite is a registered builder that turns an :class:`EvalContext` into a list of
:class:`Task` objects; the runner skips tasks already in the store. Suites that need
an aggregate (mCE, sanity checks across eps) provide ``summarize``, which reads the
suite's stored rows and returns one more result, stored under ``<suite>/summary``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from shiftlab.data import ImageDataset, iterate_batches, load_dataset, num_batches
from shiftlab.evaluate.cache import EvalCache
from shiftlab.models import ModelCard
from shiftlab.registry import Registry
from shiftlab.seeding import make_generator
from shiftlab.store import Store, TaskId, TaskRow


@dataclass(frozen=True)
class SuiteOptions:
    """Options every suite may read (the CLI's ``evaluate`` flags).

    Args:
        seed: base seed; per-task, per-batch generators are derived from it.
        limit: evaluate on the first N test images only.
        batch_size: images per forward pass.
        corruptions: corruption names to run (None: all registered).
        severities: severities to run (None: 1..5).
        params: corruption parameter table ("cifar", "tiny", "imagenet"; None: by image size).
        baseline: checkpoint of the model that normalises mCE.
        norm: threat model norm for adversarial suites ("linf" or "l2").
        eps: perturbation budgets for adversarial suites.
        attacks: attack names (None: the suite's default).
        ood_sets: out-of-distribution dataset names (None: the suite's default).
    """

    seed: int = 0
    limit: int | None = None
    batch_size: int = 256
    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] | None = None
    params: str | None = None
    baseline: Path | None = None
    norm: str = "linf"
    eps: tuple[float, ...] = ()
    attacks: tuple[str, ...] | None = None
    ood_sets: tuple[str, ...] | None = None


class Progress(Protocol):
    """What suites report progress to; the CLI implements it with Rich."""

    def start(self, label: str, total: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    """Progress that shows nothing (library default)."""

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass


@dataclass
class EvalContext:
    """Everything a task needs: the model, the test data, options, the store, the device."""

    model: nn.Module
    card: ModelCard
    dataset: str
    data: ImageDataset
    options: SuiteOptions
    store: Store
    device: torch.device
    run_id: str
    data_root: Path | None = None
    progress: Progress = field(default_factory=NullProgress)
    cache: EvalCache = field(default_factory=EvalCache.create)
    _splits: dict[str, ImageDataset] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return self.card.fingerprint

    @property
    def dataset_key(self) -> str:
        """The dataset as stored: its name, plus ``[:N]`` when only the first N images are used."""
        limit = self.options.limit
        return f"{self.dataset}[:{limit}]" if limit is not None and limit < 10**12 else self.dataset

    def task_id(self, key: str) -> TaskId:
        return TaskId(self.card.fingerprint, self.dataset_key, key, self.options.seed)

    def generator(self, key: str, batch_index: int, device: torch.device | str | None = None) -> torch.Generator:
        """The generator for one batch of one task, derived from (seed, key, batch index)."""
        return make_generator(self.options.seed, key, batch_index, device=device or self.device)

    def batches(self, data: ImageDataset | None = None) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """(batch index, images, labels) over the test data (or ``data``) on the device."""
        ds = data if data is not None else self.data
        for i, (x, y) in enumerate(iterate_batches(ds, self.options.batch_size, device=self.device)):
            yield i, x, y

    def num_batches(self, data: ImageDataset | None = None) -> int:
        return num_batches(data if data is not None else self.data, self.options.batch_size)

    def split(self, name: str) -> ImageDataset:
        """Another split of the evaluated dataset ("val" or "train"), loaded once."""
        if name not in self._splits:
            self._splits[name] = load_dataset(self.dataset, name, root=self.data_root, seed=0)
        return self._splits[name]


@dataclass
class TaskResult:
    """What a task produces: scalar metrics (stored as numbers) and JSON artifacts (curves, bins)."""

    metrics: dict[str, float]
    artifacts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """One unit of work with its store key; ``params`` describes it exactly (stored with the row)."""

    key: str
    suite: str
    params: dict[str, Any]
    run: Callable[[EvalContext], TaskResult]


@dataclass(frozen=True)
class Suite:
    """A registered list of tasks plus an optional summary over their stored rows."""

    name: str
    description: str
    build: Callable[[EvalContext], list[Task]]
    summarize: Callable[[EvalContext, list[TaskRow]], TaskResult | None] | None = None


SUITES: Registry[Suite] = Registry("suite")
