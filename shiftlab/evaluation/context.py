"""The evaluation context: the model, the test data and its identity, the run options, the store.

``make_context`` loads a checkpoint and a test split, fingerprints the data (content hash, cached in
the store by the data's source signature) and registers the model; everything a task needs is here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from shiftlab.core.devices import check_amp, resolve_device
from shiftlab.core.errors import UserError
from shiftlab.core.identity import DatasetIdentity, TaskIdentity
from shiftlab.core.progress import EvalProgress, NullProgress
from shiftlab.core.seeding import make_generator
from shiftlab.data import ImageDataset, iterate_batches, load_dataset
from shiftlab.data.fingerprint import content_fingerprint
from shiftlab.evaluation.blocks import block_ranges
from shiftlab.evaluation.cache import EvalCache
from shiftlab.models import ModelCard, checkpoint_fingerprint, is_named, load_model, named_model
from shiftlab.models.precision import precision_fingerprint, precision_name, with_precision
from shiftlab.store import ResultKey, Store


@dataclass(frozen=True)
class RunOptions:
    """Options of every evaluation run (each suite has its own on top).

    Args:
        seed: base seed; every random draw derives from (seed, task identity, image block).
        limit: evaluate on the first N test images only.
        batch_size: images per forward pass (never changes a number).
        device: "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N" or "mps".
        amp: forward passes under autocast in "bf16" (CPU or CUDA) or "fp16" (CUDA); the model's rows are
            then stored as a model of their own (``models/precision.py``); attacks stay float32.
        channels_last: weights and inputs in NHWC layout (the same numbers up to rounding, the same rows).
    """

    seed: int = 0
    limit: int | None = None
    batch_size: int = 256
    device: str = "auto"
    amp: str | None = None
    channels_last: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise UserError(f"--seed must be a non-negative integer, got {self.seed!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or self.limit < 1):
            raise UserError(f"--limit must be a positive number of images, got {self.limit}")
        if isinstance(self.batch_size, bool) or self.batch_size < 1:
            raise UserError(f"--batch-size must be a positive integer, got {self.batch_size}")
        check_amp(self.amp, resolve_device(self.device))


@dataclass
class EvalContext:
    """Everything a task needs: the model, the test data and its identity, options, store, device."""

    model: nn.Module
    card: ModelCard
    data: ImageDataset
    data_name: str
    dataset: DatasetIdentity
    run: RunOptions
    store: Store
    device: torch.device
    run_id: str
    data_root: Path | None = None
    progress: EvalProgress = field(default_factory=NullProgress)
    cache: EvalCache = field(default_factory=EvalCache.create)
    _splits: dict[str, ImageDataset] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return self.card.fingerprint

    def key(self, identity: TaskIdentity) -> ResultKey:
        """The store identity of ``identity``'s result for this model, data and seed."""
        return ResultKey(self.card.fingerprint, self.dataset, identity, self.run.seed)

    def generator(self, *parts: object, device: torch.device | str | None = None) -> torch.Generator:
        """A generator derived from (seed, *parts)."""
        return make_generator(self.run.seed, *parts, device=device or self.device)

    def batches(self, data: ImageDataset | None = None) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """(index of the batch's first image, images, labels) over the test data (or ``data``) on the device."""
        ds = data if data is not None else self.data
        for i, (x, y) in enumerate(iterate_batches(ds, self.run.batch_size, device=self.device)):
            yield i * self.run.batch_size, x, y

    def images(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Test images [start, stop) and their labels, on the device."""
        x, y = self.data.get_batch(torch.arange(start, stop))
        return x.to(self.device), y.to(self.device)

    def stored_blocks(self, identity: TaskIdentity, size: int,
                      compute: Callable[[int, int, int], dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The payload of every block of ``size`` test images under ``identity``, in order. A block the store
        holds is read back; any other is ``compute(block, start, stop)``, saved as soon as it is done, so a
        killed run resumes at its first unfinished block. Progress advances by each block's images."""
        key = self.key(identity)
        done = self.store.load_batches(key)
        for b, (start, stop) in enumerate(block_ranges(len(self.data), size)):
            if b not in done:
                done[b] = compute(b, start, stop)
                self.store.save_batch(key, b, done[b])
            yield done[b]
            self.progress.advance(stop - start)

    def split(self, name: str) -> ImageDataset:
        """Another split of the evaluated dataset ("val" or "train"), loaded once."""
        if name not in self._splits:
            self._splits[name] = load_dataset(self.data_name, name, root=self.data_root, seed=0)
        return self._splits[name]


def identify(data: ImageDataset, name: str, split: str, limit: int | None, store: Store) -> DatasetIdentity:
    """The dataset identity of ``data`` (its content fingerprint cached in ``store`` by source signature)."""
    signature = data.signature()
    cached = store.cached_content(signature) if signature else None
    if cached is not None and cached[1] == len(data):
        content = cached[0]
    else:
        content = content_fingerprint(data)
        if signature:
            store.cache_content(signature, content, len(data))
    return DatasetIdentity(name, split, limit if limit is not None and limit < 10**12 else None, content, len(data))


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_compatible(card: ModelCard, data: ImageDataset, name: str) -> None:
    cfg, info = card.config, data.info
    if cfg.in_channels != info.channels or cfg.num_classes != info.num_classes:
        raise UserError(
            f"model {cfg.arch!r} expects {cfg.in_channels}-channel images and {cfg.num_classes} classes, but "
            f"{name!r} has {info.channels} channels and {info.num_classes} classes"
        )


@dataclass
class Subject:
    """A loaded model and its test data, before anything touches a store."""

    checkpoint: str
    model: nn.Module
    card: ModelCard
    data: ImageDataset
    data_name: str
    data_root: Path | None
    run: RunOptions
    device: torch.device


def load_subject(checkpoint: str | Path, run: RunOptions | None = None, *, dataset: str | None = None,
                 data_root: str | Path | None = None, download: bool = False,
                 pretrained: str | None = None) -> Subject:
    """Load the model and the test split and check they fit together (every user mistake raises here).

    ``checkpoint`` is a run directory, a weights file with its card, ``zoo:NAME``, or a third-party
    model by name (``torchvision:NAME``, ``timm:NAME``; ``dataset`` is then required, ``pretrained``
    names the library's weights, and the card is written on the fly).
    """
    run = run or RunOptions()
    device = resolve_device(run.device)
    root = Path(data_root).expanduser() if data_root is not None else None
    if pretrained is not None and not is_named(str(checkpoint)):
        raise UserError("--pretrained applies to models named torchvision:NAME or timm:NAME")
    if is_named(str(checkpoint)):
        if dataset is None:
            raise UserError(f"{checkpoint} has no card naming its dataset; pass --dataset")
        data = load_dataset(dataset, "test", root=root, limit=run.limit, download=download)
        info = data.info
        model, card = named_model(str(checkpoint), dataset, info.num_classes, info.channels, info.image_size,
                                  info.mean, info.std, pretrained, run.seed)
        model = model.to(device)
        name = dataset
    else:
        model, card = load_model(checkpoint, device=device)
        name = dataset or card.dataset
        data = load_dataset(name, "test", root=root, limit=run.limit, download=download)
    check_compatible(card, data, name)
    if run.amp is not None:
        card = replace(card, fingerprint=precision_fingerprint(card.fingerprint, run.amp),
                       name=precision_name(card.name or Path(str(checkpoint)).stem, run.amp))
    return Subject(str(checkpoint), with_precision(model, run.amp, run.channels_last), card, data, name, root, run,
                   device)


def evaluated_fingerprint(checkpoint: str | Path, run: RunOptions) -> str:
    """The fingerprint ``checkpoint``'s rows are stored under when evaluated with ``run`` (its numerics)."""
    return precision_fingerprint(checkpoint_fingerprint(checkpoint), run.amp)


def make_context(subject: Subject, store: Store, *, progress: EvalProgress | None = None,
                 cache: EvalCache | None = None) -> EvalContext:
    """Identify the subject's data and register model and data in the store.

    ``cache`` (default: a fresh one) may be shared by the contexts of several models evaluated on the
    same data, so corrupted images are generated once.
    """
    identity = identify(subject.data, subject.data_name, "test", subject.run.limit, store)
    where = str(subject.data_root) if subject.data_root is not None else "default location"
    store.register_dataset(identity, f"{where}; {subject.data.describe()}")
    card = subject.card
    named = subject.checkpoint.startswith("zoo:") or is_named(subject.checkpoint)
    path = subject.checkpoint if named else str(Path(subject.checkpoint).resolve())
    store.upsert_model(card.fingerprint, name=card.name or Path(subject.checkpoint).stem, arch=card.config.arch,
                       dataset=card.dataset, recipe=str(card.recipe.get("name", "")),
                       num_params=count_params(subject.model), card=card.to_dict(), checkpoint_path=path)
    return EvalContext(model=subject.model, card=card, data=subject.data, data_name=subject.data_name,
                       dataset=identity, run=subject.run, store=store, device=subject.device, run_id=uuid.uuid4().hex,
                       data_root=subject.data_root, progress=progress or NullProgress(),
                       cache=cache if cache is not None else EvalCache.create())


def test_identity(name: str, data_root: str | Path | None, limit: int | None, store: Store) -> DatasetIdentity:
    """The identity of a dataset's test split (its first ``limit`` images) as an evaluation records it."""
    root = Path(data_root).expanduser() if data_root is not None else None
    return identify(load_dataset(name, "test", root=root, limit=limit), name, "test", limit, store)
