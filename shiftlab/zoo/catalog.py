"""Where the zoo's checkpoints are and what their cards say.

The zoo directory is the repository's ``zoo/`` (found next to the package in a source checkout or
editable install), ``$SHIFTLAB_ZOO`` when set, or ``--zoo DIR``. Each entry is ``zoo/<name>/``
holding ``model.safetensors`` and ``model.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shiftlab.errors import UserError
from shiftlab.models import ModelCard
from shiftlab.models.checkpoint import read_card
from shiftlab.zoo.entries import ZOO, ZooEntry


def default_zoo_dir() -> Path:
    """``$SHIFTLAB_ZOO``, else the ``zoo/`` directory of the source tree this package lives in."""
    env = os.environ.get("SHIFTLAB_ZOO")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "zoo"


@dataclass(frozen=True)
class ZooModel:
    """A zoo entry that has a checkpoint on disk."""

    entry: ZooEntry
    path: Path
    card: ModelCard

    @property
    def name(self) -> str:
        return self.entry.name


def resolve(name: str, zoo_dir: Path | None = None) -> ZooModel:
    """The checkpoint of zoo entry ``name``; unknown names and missing files are one-line errors."""
    entry = ZOO.get(name)
    path = (zoo_dir or default_zoo_dir()) / entry.name
    if not (path / "model.safetensors").exists():
        raise UserError(f"zoo model {name!r} has no checkpoint in {path}; run 'shiftlab zoo train --only {name}'")
    return ZooModel(entry, path, read_card(path))


def installed(zoo_dir: Path | None = None, names: list[str] | None = None) -> list[ZooModel]:
    """Every zoo entry (or those in ``names``) that has a checkpoint, in registry order."""
    root = zoo_dir or default_zoo_dir()
    wanted = names if names is not None else ZOO.names()
    for name in wanted:
        ZOO.entry(name)  # unknown names raise before anything runs
    return [resolve(n, root) for n in wanted if (root / n / "model.safetensors").exists()]
