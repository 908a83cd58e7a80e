"""The test-time adaptation contract: typed, validated adapter arguments, the adapter protocol and
the ``ADAPTERS`` registry.

An adapter works on a *copy* of the caller's model (:func:`model_copy`): the caller's weights,
buffers, mode and ``requires_grad`` flags are never touched. ``step(x, streams)`` adapts on a batch
and returns its logits; ``reset()`` returns the copy to the source model. The evaluation chooses the
mode: *online* carries the adapted state from one batch to the next (in a stated order), *episodic*
resets before every batch, so a batch's logits do not depend on the batches before it.

Every random draw (augmented copies) comes from :class:`~shiftlab.core.seeding.ImageStreams` keyed
by image, so it does not depend on which images share a batch.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import torch
from torch import nn

from shiftlab.core.errors import UserError
from shiftlab.core.registry import Registry
from shiftlab.core.seeding import DEFAULT_SEED, ImageStreams


class Mode(Enum):
    """How batches follow one another: ONLINE keeps the adapted state, EPISODIC resets every batch."""

    ONLINE = "online"
    EPISODIC = "episodic"


@dataclass(frozen=True, slots=True)
class AdapterMeta:
    """Registry metadata of an adapter.

    Args:
        description: one line for listings.
        paper: authors and year.
        arxiv: the arXiv identifier.
        modes: the modes it supports, its default first.
        single_image: it adapts each image alone (its numbers do not depend on the batch size).
        needs_grad: it takes gradient steps at test time.
    """

    description: str
    paper: str
    arxiv: str
    modes: tuple[Mode, ...] = (Mode.EPISODIC,)
    single_image: bool = False
    needs_grad: bool = False

    @property
    def default_mode(self) -> Mode:
        return self.modes[0]


class Adapter(Protocol):
    """A prepared adapter holding its own copy of the model."""

    def step(self, x: torch.Tensor, streams: ImageStreams | None = None) -> torch.Tensor:
        """Adapt on the batch ``x`` (N×C×H×W in [0, 1]) and return its N×K logits."""
        ...

    def reset(self) -> None:
        """Return the copy to the source model's state."""
        ...


def arg(default: float, *, low: float | None = None, high: float | None = None, help: str = "") -> Any:
    """A field of an adapter's arguments with its bounds (inclusive) and help text."""
    return field(default=default, metadata={"low": low, "high": high, "help": help})


class AdapterArgs:
    """Base of an adapter's arguments: subclasses are frozen dataclasses whose int/float fields
    (declared with :func:`arg`) are its hyper-parameters, validated on construction."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise UserError(f"{name}: {f.name} must be a finite number, got {value!r}")
            low, high = f.metadata.get("low"), f.metadata.get("high")
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"at least {low:g}" if high is None else f"in [{low:g}, {high:g}]"
                raise UserError(f"{name}: {f.name} must be {span}, got {value!r}")

    def prepare(self, model: nn.Module) -> Adapter:
        """An adapter working on a copy of ``model`` (raises UserError when the model does not fit)."""
        raise NotImplementedError

    def items(self) -> tuple[tuple[str, float], ...]:
        """Every argument (defaults included) as sorted (name, value) pairs: what identifies a setting."""
        return tuple(sorted((f.name, getattr(self, f.name)) for f in dataclasses.fields(self)))  # type: ignore[arg-type]


ADAPTERS: Registry[type[AdapterArgs], AdapterMeta] = Registry("adapter")


def _coerce(value: Any, kind: Any, adapter: str, key: str) -> int | float:
    if isinstance(value, bool):
        raise UserError(f"adapter {adapter!r}: {key} must be a number, got {value!r}")
    try:
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            return int(value) if not isinstance(value, str) else int(value.strip())
        return float(value)
    except (TypeError, ValueError):
        expected = "an integer" if kind is int else "a number"
        raise UserError(f"adapter {adapter!r}: {key} must be {expected}, got {value!r}") from None


def adapter_args(name: str, given: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> AdapterArgs:
    """The typed, validated arguments of adapter ``name`` from strings or numbers (the rest at their
    defaults); an unknown adapter or argument, a bad type or an out-of-range value is a UserError."""
    cls = ADAPTERS.get(name)
    values = dict(given)
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UserError(f"adapter {name!r} has no argument {', '.join(unknown)}; its arguments: "
                        f"{', '.join(known) or 'none'}")
    return cls(**{k: _coerce(v, hints[k], name, k) for k, v in values.items()})


def describe_args(cls: type[AdapterArgs]) -> str:
    """"lr=0.001 (learning rate), steps=1 (...)": the arguments with their defaults and help."""
    return ", ".join(f"{f.name}={f.default:g}" + (f" ({f.metadata['help']})" if f.metadata.get("help") else "")
                     for f in dataclasses.fields(cls))  # type: ignore[arg-type]


def model_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode with no parameter requiring gradients.

    The caller's model is never touched: its weights, buffers, mode and ``requires_grad`` flags stay
    as they are, whatever the adapter does to the copy.
    """
    copied = copy.deepcopy(model)
    copied.eval()
    for p in copied.parameters():
        p.requires_grad_(False)
        p.grad = None
    return copied


class Snapshot:
    """The state of a module at one moment, restored by :meth:`restore` (an adapter's reset)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def restore(self) -> None:
        self.module.load_state_dict(self.state, strict=True)


def image_streams(x: torch.Tensor, streams: ImageStreams | None) -> ImageStreams:
    """``streams``, or (when the caller gives none) streams keyed by each image's position in ``x``
    under the default seed."""
    if streams is not None:
        if len(streams) != len(x):
            raise ValueError(f"{len(streams)} image streams for a batch of {len(x)} images")
        return streams
    return ImageStreams.for_images(DEFAULT_SEED, "adapt", torch.arange(len(x)))
