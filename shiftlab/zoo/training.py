"""Rebuild zoo checkpoints: train an entry with ``shiftlab.train`` and copy its checkpoint into ``zoo/``.

Runs go to ``<runs>/zoo/<name>`` (resumable with the loop's exact resume); only ``model.safetensors``
and ``model.json`` are copied into the zoo, so the repository never holds optimizer state.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from shiftlab.train import TrainConfig, TrainResult, train
from shiftlab.train.loop import TrainProgress
from shiftlab.zoo.entries import ZOO_DATASET, ZOO_EPOCHS, ZOO_MODEL, ZOO_SEED, ZooEntry


def zoo_config(entry: ZooEntry, runs: Path, data_root: str | None = None) -> TrainConfig:
    """The full training configuration of ``entry`` (stored in its card)."""
    return TrainConfig(
        model=ZOO_MODEL, dataset=ZOO_DATASET, recipe=entry.recipe,
        recipe_args=tuple(sorted(entry.recipe_args.items())), epochs=ZOO_EPOCHS, seed=ZOO_SEED,
        out=str(runs / "zoo" / entry.name), name=entry.model_name, select=entry.select, data_root=data_root,
    )


def train_entry(entry: ZooEntry, zoo_dir: Path, runs: Path, progress: TrainProgress | None = None,
                data_root: str | None = None) -> TrainResult:
    """Train (or resume) ``entry`` and install its checkpoint as ``zoo_dir/<name>/``."""
    config = zoo_config(entry, runs, data_root)
    result = train(config, progress, resume=True)
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
