"""The OOD suite: how well each detector separates the test set from out-of-distribution sets.

Tasks ``ood/<set>/<detector>`` with metrics auroc, aupr_in, aupr_out, fpr95 (in-distribution =
positive, higher score = more in-distribution; see ``shiftlab.metrics.ood``) and artifact ``roc``
({fpr, tpr}, at most 200 points). OOD sets come from ``options.ood_sets``; the default for 1-channel
28 px data is digits, uniform-noise, gaussian-noise and blobs, otherwise the three generated sets.
Any registered dataset works as an OOD set, as does ``image-folder:/path`` (or ``image-folder`` with
``--data-root``); images are resized and their channels matched to the evaluated dataset.
``near-ood:<corruption>`` uses the severity-5 corruption of the test set itself (needs
``shiftlab.shifts``). Detectors that need training statistics are fitted on a seeded subset of
``FIT_SUBSET`` training images (Mahalanobis, KNN), once per run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from shiftlab.data import ImageDataset, load_dataset
from shiftlab.errors import UserError
from shiftlab.evaluate.classification import BatchTransform
from shiftlab.evaluate.suites.calibration import CorruptionSpec, corruption_transform, shifts_module
from shiftlab.evaluate.tasks import SUITES, EvalContext, Suite, SuiteOptions, Task, TaskResult
from shiftlab.metrics.ood import (
    downsample_curve,
    fpr_at_tpr,
    ood_aupr_in,
    ood_aupr_out,
    ood_auroc,
    roc_points,
)
from shiftlab.ood import DETECTORS, Detector, LogitDetector, fit_subset
from shiftlab.ood.mahalanobis import collect_features
from shiftlab.seeding import make_generator
from shiftlab.store import TaskRow

SUITE = "ood"
FIT_SUBSET = 10_000
DETECTOR_ORDER = ("msp", "maxlogit", "energy", "odin", "mahalanobis", "knn")
MNIST_LIKE_SETS = ("digits", "uniform-noise", "gaussian-noise", "blobs")
GENERATED_SETS = ("uniform-noise", "gaussian-noise", "blobs")
NEAR_OOD_PREFIX = "near-ood:"


class MatchedDataset(ImageDataset):
    """An OOD dataset resized (bilinear) and channel-matched (gray repeated / RGB to luma) to ``info``."""

    def __init__(self, base: ImageDataset, channels: int, size: tuple[int, int]) -> None:
        self.base, self.channels, self.size = base, channels, size
        self.info = base.info

    def __len__(self) -> int:
        return len(self.base)

    @property
    def labels(self) -> torch.Tensor:
        return self.base.labels

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.base.get_batch(indices)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False).clamp(0, 1)
        if x.shape[1] != self.channels:
            if x.shape[1] == 1:
                x = x.expand(-1, self.channels, -1, -1).contiguous()
            elif x.shape[1] == 3 and self.channels == 1:
                x = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).clamp(0, 1)
            else:
                raise UserError(f"cannot match {x.shape[1]}-channel OOD images to {self.channels} channels")
        return x, y


def default_ood_sets(options: SuiteOptions, channels: int, size: tuple[int, int]) -> tuple[str, ...]:
    if options.ood_sets:
        return options.ood_sets
    return MNIST_LIKE_SETS if channels == 1 and size == (28, 28) else GENERATED_SETS


def load_ood_set(ctx: EvalContext, spec: str) -> ImageDataset:
    """The OOD set named ``spec`` ("name" or "name:/root"), matched to the test set, at most as large."""
    info = ctx.data.info
    name, _, root_text = spec.partition(":")
    root: Path | None = Path(root_text).expanduser() if root_text else None
    if root is None and name in (ctx.dataset, "image-folder"):
        root = ctx.data_root
    data = load_dataset(name, "test", root=root, image_size=info.image_size[0],
                        extra={"channels": str(info.channels)}, limit=len(ctx.data))
    return MatchedDataset(data, info.channels, info.image_size)


def detector_names() -> list[str]:
    """Every registered detector (the suite runs all), the classic ones first."""
    known = DETECTORS.names()
    return [*(n for n in DETECTOR_ORDER if n in known), *(n for n in known if n not in DETECTOR_ORDER)]


def forward_scores(ctx: EvalContext, score: Callable[[torch.Tensor], torch.Tensor], data: ImageDataset | None = None,
                   transform: BatchTransform | None = None) -> torch.Tensor:
    """``score(x)`` over every batch of ``data`` (default: the test set), optionally transformed first."""
    out = []
    for i, x, y in ctx.batches(data):
        if transform is not None:
            x = transform(x, y, i)
        out.append(score(x).detach().double().cpu())
    return torch.cat(out)


def ood_result(scores_in: torch.Tensor, scores_out: torch.Tensor) -> TaskResult:
    """AUROC, AUPR-in/out, FPR@95 and the downsampled ROC curve."""
    fpr, tpr, _ = roc_points(scores_in, scores_out)
    return TaskResult(
        metrics={
            "auroc": ood_auroc(scores_in, scores_out),
            "aupr_in": ood_aupr_in(scores_in, scores_out),
            "aupr_out": ood_aupr_out(scores_in, scores_out),
            "fpr95": fpr_at_tpr(scores_in, scores_out, 0.95),
            "n_in": float(scores_in.numel()),
            "n_out": float(scores_out.numel()),
        },
        artifacts={"roc": downsample_curve(fpr, tpr, 200)},
    )


class _RunCache:
    """What the tasks of one build share: fitted detectors, loaded OOD sets and logits per source
    (so MSP, MaxLogit and energy need one forward pass per set). Lives only as long as the task list."""

    def __init__(self) -> None:
        self.detectors: dict[str, Detector] = {}
        self.sets: dict[str, ImageDataset] = {}
        self.logits: dict[str, torch.Tensor] = {}
        self.in_scores: dict[str, torch.Tensor] = {}
        self.train_features: dict[str | None, tuple[torch.Tensor, torch.Tensor]] = {}

    def detector(self, c: EvalContext, name: str) -> Detector:
        if name not in self.detectors:
            det = DETECTORS.get(name)()
            if det.needs_fit:
                gen = make_generator(c.options.seed, SUITE, "fit-subset")
                subset = fit_subset(c.split("train"), FIT_SUBSET, gen)
                if hasattr(det, "fit_features"):  # feature detectors share one pass over the fit subset
                    layer = getattr(det, "layer", None)
                    if layer not in self.train_features:
                        self.train_features[layer] = collect_features(c.model, subset, c.options.batch_size,
                                                                      c.device, layer)
                    det.fit_features(*self.train_features[layer])
                else:
                    det.fit(c.model, subset, batch_size=c.options.batch_size, device=c.device)
            self.detectors[name] = det
        return self.detectors[name]

    def scores(self, c: EvalContext, det: Detector, source: str | None) -> torch.Tensor:
        """Scores of the test set (``source`` None) or of the OOD set ``source``."""
        data: ImageDataset | None = None
        transform: BatchTransform | None = None
        if source is not None and source.startswith(NEAR_OOD_PREFIX):
            spec = CorruptionSpec(source[len(NEAR_OOD_PREFIX):], 5, c.options.params)
            transform = corruption_transform(c, f"{SUITE}/{source}", spec)  # same images for every detector
        elif source is not None:
            if source not in self.sets:
                self.sets[source] = load_ood_set(c, source)
            data = self.sets[source]
        if isinstance(det, LogitDetector):
            key = source or ""
            if key not in self.logits:
                with torch.no_grad():
                    self.logits[key] = forward_scores(c, c.model, data, transform)
            return det.score_logits(self.logits[key])
        return forward_scores(c, lambda x: det.score(c.model, x), data, transform)


def build_ood(ctx: EvalContext) -> list[Task]:
    sets = default_ood_sets(ctx.options, ctx.data.info.channels, ctx.data.info.image_size)
    if any(s.startswith(NEAR_OOD_PREFIX) for s in sets) and shifts_module() is None:
        raise UserError("near-OOD sets need the corruption package shiftlab.shifts, which is not installed")
    cache = _RunCache()

    def run_for(set_spec: str, name: str) -> Callable[[EvalContext], TaskResult]:
        def run(c: EvalContext) -> TaskResult:
            det = cache.detector(c, name)
            if name not in cache.in_scores:
                cache.in_scores[name] = cache.scores(c, det, None)
            return ood_result(cache.in_scores[name], cache.scores(c, det, set_spec))

        return run

    tasks = []
    for set_spec in sets:
        if set_spec.startswith(NEAR_OOD_PREFIX):
            shifts_module().SHIFTS.get(set_spec[len(NEAR_OOD_PREFIX):])  # type: ignore[union-attr]
        else:
            cache.sets[set_spec] = load_ood_set(ctx, set_spec)  # unknown or missing sets fail before any work
        for name in detector_names():
            key = f"{SUITE}/{set_spec}/{name}"
            params = {"ood_set": set_spec, "detector": name, "limit": ctx.options.limit, "n_in": len(ctx.data),
                      "fit_subset": FIT_SUBSET if DETECTORS.meta(name).needs_fit else 0}
            tasks.append(Task(key, SUITE, params, run_for(set_spec, name)))
    return tasks


def summarize_ood(ctx: EvalContext, rows: list[TaskRow]) -> TaskResult | None:
    """Mean AUROC and FPR@95 of each detector over the OOD sets it ran on."""
    by_detector: dict[str, list[TaskRow]] = {}
    for r in rows:
        by_detector.setdefault(str(r.params.get("detector")), []).append(r)
    out: dict[str, float] = {}
    for name, members in by_detector.items():
        for metric in ("auroc", "fpr95"):
            values = [r.metrics[metric] for r in members if metric in r.metrics]
            if values:
                out[f"{metric}_mean/{name}"] = sum(values) / len(values)
    return TaskResult(out) if out else None


SUITES.add(SUITE, Suite(SUITE, "OOD detection (MSP, MaxLogit, energy, ODIN, Mahalanobis, KNN) against OOD sets",
                        build_ood, summarize_ood))
