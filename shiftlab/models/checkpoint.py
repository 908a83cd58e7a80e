"""Safe checkpoint IO: safetensors weights plus a JSON card; fingerprints.

Nothing here unpickles arbitrary objects: ``.pt``/``.pth`` files load with
``torch.load(weights_only=True)`` and anything that needs more is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shiftlab.core.errors import CheckpointError
from shiftlab.core.version import __version__
from shiftlab.models.base import ModelConfig, Normalized, build_model

CARD_FORMAT = "shiftlab-checkpoint/1"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "model.json"
ZOO_PREFIX = "zoo:"


def zoo_dir() -> Path:
    """Where shiftlab's own checkpoints are: ``$SHIFTLAB_ZOO``, else the package data ``models/zoo``."""
    env = os.environ.get("SHIFTLAB_ZOO")
    if env:
        return Path(env).expanduser()
    return Path(str(resources.files("shiftlab.models").joinpath("zoo")))


def locate(path: str | Path) -> Path:
    """A checkpoint path: ``zoo:NAME`` is the zoo's entry NAME, anything else a path on disk."""
    text = str(path)
    if text.startswith(ZOO_PREFIX):
        name = text[len(ZOO_PREFIX):]
        if not name or "/" in name or name.startswith("."):
            raise CheckpointError(f"write a zoo model as zoo:NAME (see `shiftlab zoo list`), got {text!r}")
        return zoo_dir() / name
    return Path(text).expanduser()


@dataclass
class ModelCard:
    """The JSON sidecar of a checkpoint: what the model is and how it was made."""

    config: ModelConfig
    name: str = ""
    dataset: str = ""
    recipe: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    shiftlab_version: str = __version__
    strip_prefixes: tuple[str, ...] = ()
    metrics: dict[str, Any] = field(default_factory=dict)  # headline results with their protocol (zoo cards)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CARD_FORMAT,
            "name": self.name,
            "fingerprint": self.fingerprint,
            "config": self.config.to_dict(),
            "dataset": self.dataset,
            "recipe": self.recipe,
            "training": self.training,
            "shiftlab_version": self.shiftlab_version,
            "strip_prefixes": list(self.strip_prefixes),
            "metrics": self.metrics,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCard:
        return cls(
            config=ModelConfig.from_dict(d["config"]),
            name=str(d.get("name", "")),
            dataset=str(d.get("dataset", "")),
            recipe=dict(d.get("recipe", {})),
            training=dict(d.get("training", {})),
            fingerprint=str(d.get("fingerprint", "")),
            shiftlab_version=str(d.get("shiftlab_version", "")),
            strip_prefixes=tuple(d.get("strip_prefixes", ())),
            metrics=dict(d.get("metrics", {})),
        )


def fingerprint(model: nn.Module, config: ModelConfig) -> str:
    """sha256 over the architecture config and every tensor of the state dict (name, dtype, shape, bytes)."""
    h = hashlib.sha256()
    h.update(json.dumps(config.to_dict(), sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _paths(path: Path) -> tuple[Path, Path]:
    """(weights, card) paths for a checkpoint directory or a weights file."""
    if path.is_dir() or not path.suffix:
        return path / WEIGHTS_NAME, path / CARD_NAME
    return path, path.with_suffix(".json")


def save_checkpoint(path: str | Path, model: nn.Module, card: ModelCard) -> ModelCard:
    """Write ``model.safetensors`` and ``model.json`` (into a directory, or beside a ``.safetensors`` path)."""
    from safetensors.torch import save_file

    path = Path(path)
    weights, card_path = _paths(path)
    weights.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    card.fingerprint = fingerprint(model, card.config)
    card.shiftlab_version = __version__
    tmp = weights.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"format": CARD_FORMAT, "fingerprint": card.fingerprint})
    os.chmod(tmp, file_mode())  # the writer may create it private; weights and card share one mode
    tmp.replace(weights)
    write_card(card_path, card)
    return card


def file_mode() -> int:
    """The mode a new file gets under the process's umask (0644 with the usual umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_card(path: str | Path, card: ModelCard) -> None:
    """Write ``card`` as the JSON sidecar of a checkpoint directory or weights file (atomically)."""
    card_path = _paths(Path(path))[1] if not str(path).endswith(".json") else Path(path)
    tmp = card_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card.to_dict(), indent=2) + "\n")
    tmp.replace(card_path)


def _read_state(weights: Path) -> dict[str, torch.Tensor]:
    if weights.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(weights))
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"cannot read safetensors file {weights}: {exc}") from None
    if weights.suffix in (".pt", ".pth", ".bin", ".ckpt"):
        try:
            with warnings.catch_warnings():  # torch's own warnings about the pickle come before our error
                warnings.simplefilter("ignore")
                obj = torch.load(str(weights), map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise CheckpointError(
                f"{weights} needs unpickling arbitrary Python objects, which shiftlab refuses for safety; "
                "re-save it as a plain state dict or as safetensors"
            ) from None
        except (OSError, RuntimeError, EOFError) as exc:
            raise CheckpointError(f"cannot read checkpoint {weights}: {exc}") from None
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(f"{weights} is not a state dict of tensors")
        return obj
    raise CheckpointError(f"unknown checkpoint format {weights.suffix!r}; use .safetensors, .pt or .pth")


def read_card(path: str | Path) -> ModelCard:
    """The card of a checkpoint directory or weights file (or ``zoo:NAME``)."""
    weights, card_path = _paths(locate(path))
    if not card_path.exists():
        raise CheckpointError(
            f"checkpoint card {card_path} is missing; shiftlab needs the JSON sidecar written by "
            "'shiftlab train' (or one you write with the architecture config)"
        )
    try:
        raw = json.loads(card_path.read_text())
        return ModelCard.from_dict(raw)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint card {card_path} is malformed: {exc}") from None


def state_dict_mismatch(message: str) -> str:
    """The informative part of torch's load_state_dict error: which keys or shapes do not match."""
    lines = [line.strip() for line in message.splitlines()[1:] if line.strip()]
    useful = [line for line in lines if line.startswith(("size mismatch", "Missing key", "Unexpected key"))] or lines
    text = " ".join(useful[:2]) or message.splitlines()[0]
    return text if len(text) <= 300 else text[:297] + "..."


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Normalized, ModelCard]:
    """Load a checkpoint (directory, weights file + card, or ``zoo:NAME``) strictly, in eval mode."""
    path = locate(path)
    weights, _ = _paths(path)
    if not weights.exists():
        raise CheckpointError(f"checkpoint {weights} does not exist")
    card = read_card(path)
    state = _read_state(weights)
    for prefix in card.strip_prefixes:
        state = {k.removeprefix(prefix): v for k, v in state.items()}
    model = build_model(card.config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"weights in {weights} do not match architecture {card.config.arch!r}: "
                              f"{state_dict_mismatch(str(exc))}") from None
    fp = fingerprint(model, card.config)
    if card.fingerprint and card.fingerprint != fp:
        raise CheckpointError(f"{weights} does not match the fingerprint in its card (file changed or corrupted)")
    card.fingerprint = fp
    return model.to(device).eval(), card


def checkpoint_fingerprint(path: str | Path) -> str:
    """The fingerprint of a checkpoint: from its card, or computed from its weights when the card has none."""
    card = read_card(path)
    return card.fingerprint or load_model(path)[1].fingerprint
