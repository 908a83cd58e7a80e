"""The recipe contract and registry.

A recipe turns one batch into a loss. It is a frozen dataclass whose fields are its
hyper-parameters (``shiftlab train --recipe NAME --recipe-arg field=value``), registered by
name; the loop in ``train/loop.py`` never changes when a recipe is added.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from shiftlab.core.errors import UserError
from shiftlab.core.registry import Registry


@dataclass(frozen=True, slots=True)
class RecipeMeta:
    """Registry metadata of a recipe."""

    description: str
    paper: str = ""


@dataclass
class StepContext:
    """What a recipe may use at one optimisation step.

    Args:
        generator: the step's own generator (derived from seed, epoch, step), on the device.
        epoch: 0-based epoch.
        step: 0-based step within the epoch.
        steps_per_epoch: number of steps in an epoch.
        epochs: total number of epochs.
        label_smoothing: the loop's label smoothing for cross-entropy.
        num_classes: number of classes.
    """

    generator: torch.Generator
    epoch: int
    step: int
    steps_per_epoch: int
    epochs: int
    label_smoothing: float
    num_classes: int

    @property
    def progress(self) -> float:
        """Fraction of training done, in [0, 1)."""
        return (self.epoch * self.steps_per_epoch + self.step) / max(1, self.epochs * self.steps_per_epoch)


@dataclass
class StepOutput:
    """The loss to minimise and the logits on the clean batch (for the running accuracy)."""

    loss: torch.Tensor
    logits: torch.Tensor


class Recipe:
    """Base class: subclasses are dataclasses that implement ``step``."""

    def setup(self, model: nn.Module) -> None:
        """Called once before training (e.g. to add auxiliary batch-norm layers)."""

    def step(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, ctx: StepContext) -> StepOutput:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}  # type: ignore[arg-type]


RECIPES: Registry[type[Recipe], RecipeMeta] = Registry("recipe")


def _coerce(value: str, kind: Any, key: str, recipe: str) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if value.lower() in ("none", "null"):
            return None
        kind = args[0]
    try:
        if kind is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if kind in (int, float, str):
            return kind(value)
    except ValueError:
        raise UserError(f"recipe {recipe!r}: {key}={value!r} is not a valid {getattr(kind, '__name__', kind)}") from None
    return value


def build_recipe(name: str, args: dict[str, str] | None = None) -> Recipe:
    """Instantiate recipe ``name`` with string arguments converted to its field types."""
    cls = RECIPES.get(name)
    args = dict(args or {})
    hints = typing.get_type_hints(cls)
    fields: set[str] = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    unknown = sorted(set(args) - fields)
    if unknown:
        known = ", ".join(sorted(fields)) or "none"
        raise UserError(f"recipe {name!r} has no argument {', '.join(unknown)}; its arguments: {known}")
    kwargs = {k: _coerce(v, hints[k], k, name) for k, v in args.items()}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise UserError(f"recipe {name!r}: {exc}") from None
