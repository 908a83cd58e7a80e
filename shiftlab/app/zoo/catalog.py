"""Where the zoo's checkpoints are and what their cards say.

The zoo directory is the package data directory ``shiftlab/models/zoo`` (so it works from an
installed wheel), ``$SHIFTLAB_ZOO`` when set, or ``--zoo DIR``. Each entry is ``<dir>/<name>/``
holding ``model.safetensors`` and ``model.json``; ``zoo:NAME`` names it wherever a checkpoint is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from shiftlab.app.zoo.entries import ZOO, ZooEntry
from shiftlab.core.errors import UserError
from shiftlab.models import ModelCard, read_card, zoo_dir


@dataclass(frozen=True)
class ZooModel:
    """A zoo entry that has a checkpoint on disk."""

    entry: ZooEntry
    path: Path
    card: ModelCard

    @property
    def name(self) -> str:
        return self.entry.name


def resolve(name: str, directory: Path | None = None) -> ZooModel:
    """The checkpoint of zoo entry ``name``; unknown names and missing files are one-line errors."""
    entry = ZOO.get(name)
    path = (directory or zoo_dir()) / entry.name
    if not (path / "model.safetensors").exists():
        raise UserError(f"zoo model {name!r} has no checkpoint in {path}; run 'shiftlab zoo train --only {name}'")
    return ZooModel(entry, path, read_card(path))


def installed(directory: Path | None = None, names: list[str] | None = None) -> list[ZooModel]:
    """Every zoo entry (or those in ``names``) that has a checkpoint, in registry order."""
    root = directory or zoo_dir()
    wanted = names if names is not None else ZOO.names()
    for name in wanted:
        ZOO.entry(name)  # unknown names raise before anything runs
    return [resolve(n, root) for n in wanted if (root / n / "model.safetensors").exists()]
