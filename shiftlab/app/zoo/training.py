"""Rebuild zoo checkpoints: train an entry with ``shiftlab.training`` and copy its checkpoint into the zoo.

Runs go to ``<runs>/zoo/<name>`` (resumable with the loop's exact resume); only ``model.safetensors``
and ``model.json`` are copied into the zoo, so the repository never holds optimizer state.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from shiftlab.app.presenter import Presenter, SilentPresenter
from shiftlab.app.zoo.entries import ZOO, ZOO_DATASET, ZOO_EPOCHS, ZOO_SEED, ZooEntry
from shiftlab.core.progress import TrainProgress
from shiftlab.evaluation.executors import ProcessExecutor, raise_failures
from shiftlab.training import TrainConfig, TrainResult, train


def zoo_config(entry: ZooEntry, runs: Path, data_root: str | None = None) -> TrainConfig:
    """The full training configuration of ``entry`` (stored in its card)."""
    return TrainConfig(
        model=entry.arch, dataset=ZOO_DATASET, recipe=entry.recipe,
        recipe_args=tuple(sorted(entry.recipe_args.items())), epochs=ZOO_EPOCHS, seed=ZOO_SEED,
        out=str(runs / "zoo" / entry.name), name=entry.model_name, select=entry.select, data_root=data_root,
    )


def train_entry(entry: ZooEntry, zoo_dir: Path, runs: Path, progress: TrainProgress | None = None,
                data_root: str | None = None) -> TrainResult:
    """Train (or resume) ``entry`` and install its checkpoint as ``zoo_dir/<name>/``."""
    config = zoo_config(entry, runs, data_root)
    result = train(config, progress, resume="auto")
    target = zoo_dir / entry.name
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "model.json"):
        tmp = target / f".{name}.tmp"
        shutil.copyfile(result.checkpoint / name, tmp)
        tmp.replace(target / name)
    return result


def balance(entries: list[ZooEntry], jobs: int) -> list[list[ZooEntry]]:
    """Split entries over ``jobs`` workers, longest first onto the least loaded (LPT scheduling)."""
    loads = [0.0] * jobs
    groups: list[list[ZooEntry]] = [[] for _ in range(jobs)]
    for entry in sorted(entries, key=lambda e: -e.cost):
        i = loads.index(min(loads))
        groups[i].append(entry)
        loads[i] += entry.cost
    return [g for g in groups if g]


@dataclass(frozen=True)
class ZooTrainJob:
    """The entries one worker trains, as a worker process receives them."""

    names: tuple[str, ...]
    zoo_dir: str
    runs: str
    data_root: str | None = None


def run_train_job(job: ZooTrainJob) -> list[str]:
    """Train (or resume) the job's entries (a worker's entry point); returns one line per entry."""
    lines = []
    for name in job.names:
        result = train_entry(ZOO.get(name), Path(job.zoo_dir), Path(job.runs), None, job.data_root)
        t = result.card.training
        lines.append(f"zoo {name}: test accuracy {t['test_accuracy']:.4f}, {t['train_seconds']:.0f}s training")
    return lines


def train_zoo(entries: list[ZooEntry], zoo_dir: Path, runs: Path, *, jobs: int = 1, data_root: str | None = None,
              presenter: Presenter | None = None) -> None:
    """Train ``entries`` and install their checkpoints; with ``jobs`` > 1 on worker processes (LPT-balanced)."""
    show = presenter or SilentPresenter()
    if jobs > 1:
        work = [ZooTrainJob(tuple(e.name for e in group), str(zoo_dir), str(runs), data_root)
                for group in balance(entries, jobs)]
        with show.busy(f"training {len(entries)} zoo entries in {len(work)} processes"):
            outcomes = ProcessExecutor(jobs).map(run_train_job, work)
        for outcome in outcomes:
            for line in outcome.result or []:
                show.message(line)
        raise_failures(outcomes, "zoo training")
        return
    for entry in entries:
        with show.train_progress() as progress:
            result = train_entry(entry, zoo_dir, runs, progress, data_root)
        t = result.card.training
        show.message(f"zoo {entry.name}: test accuracy {t['test_accuracy']:.4f}, {t['train_seconds']:.0f}s training "
                     f"-> {zoo_dir / entry.name}")
