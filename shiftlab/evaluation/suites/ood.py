"""The OOD suite: how well each detector separates the test set from out-of-distribution sets.

Tasks (:class:`~shiftlab.core.identity.OODPair`) with metrics auroc, aupr_in, aupr_out, fpr95
(in-distribution = positive, higher score = more in-distribution; see ``shiftlab.metrics.ood``) and
artifact ``roc`` ({fpr, tpr}, at most 200 points). OOD sets come from ``--ood-set``; the default for
1-channel 28 px data is digits, uniform-noise, gaussian-noise and blobs, otherwise the three
generated sets. Any registered dataset works as an OOD set, as does ``image-folder:/path``;
images are resized and their channels matched to the evaluated dataset. ``near-ood:<corruption>``
is the severity-5 cell of the corruptions suite (the same images). Detectors that need training
statistics are fitted on a seeded subset of ``FIT_SUBSET`` training images (Mahalanobis, KNN), once
per run, from one shared feature pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from shiftlab.core.errors import UserError
from shiftlab.core.identity import CorruptionCell, OODPair, Summary
from shiftlab.data import DATASETS, DerivedDataset, ImageDataset, load_dataset
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.corrupted import corrupted_batches
from shiftlab.evaluation.flags import Flag
from shiftlab.evaluation.forward import forward
from shiftlab.evaluation.grid import PARAMS, resolve_table
from shiftlab.evaluation.suite import SUITES, Suite, SuiteMeta, Task, TaskResult
from shiftlab.metrics.ood import (
    downsample_curve,
    fpr_at_tpr,
    ood_aupr_in,
    ood_aupr_out,
    ood_auroc,
    roc_points,
)
from shiftlab.ood import DETECTORS, Detector, FeatureDetector, LogitDetector, fit_subset
from shiftlab.shifts import SHIFTS
from shiftlab.store import TaskRow

SUITE = "ood"
FIT_SUBSET = 10_000
DETECTOR_ORDER = ("msp", "maxlogit", "energy", "odin", "mahalanobis", "knn")
MNIST_LIKE_SETS = ("digits", "uniform-noise", "gaussian-noise", "blobs")
GENERATED_SETS = ("uniform-noise", "gaussian-noise", "blobs")
NEAR_OOD_PREFIX = "near-ood:"
NEAR_OOD_SEVERITY = 5


def check_ood_set(spec: str) -> None:
    """A registered dataset, ``name:/path``, or ``near-ood:<corruption>`` (validated before any work)."""
    if spec.startswith(NEAR_OOD_PREFIX):
        SHIFTS.entry(spec[len(NEAR_OOD_PREFIX):])
        return
    DATASETS.entry(spec.partition(":")[0])


def parse_ood_sets(value: Any) -> tuple[str, ...]:
    specs = [value] if isinstance(value, str) else list(value)
    out = tuple(dict.fromkeys(str(s).strip() for s in specs if str(s).strip()))
    if not out:
        raise UserError("--ood-set needs a dataset name")
    for spec in out:
        check_ood_set(spec)
    return out


OOD_SET = Flag("ood_set", "out-of-distribution set (repeatable): a dataset, name:/path, or near-ood:<corruption>",
               parse_ood_sets, repeatable=True, metavar="SET")


@dataclass(frozen=True)
class OODOptions:
    """The OOD sets (default by image size) and the corruption table of near-OOD sets."""

    ood_set: tuple[str, ...] | None = None
    params: str | None = None
    FLAGS = (OOD_SET, PARAMS)


class MatchedDataset(DerivedDataset):
    """An OOD dataset resized (bilinear) and channel-matched (gray repeated / RGB to luma) to ``info``."""

    def __init__(self, base: ImageDataset, channels: int, size: tuple[int, int]) -> None:
        super().__init__(base)
        self.channels, self.size = channels, size

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


def default_ood_sets(opts: OODOptions, channels: int, size: tuple[int, int]) -> tuple[str, ...]:
    if opts.ood_set:
        return opts.ood_set
    return MNIST_LIKE_SETS if channels == 1 and size == (28, 28) else GENERATED_SETS


def load_ood_set(ctx: EvalContext, spec: str) -> ImageDataset:
    """The OOD set named ``spec`` ("name" or "name:/root"), matched to the test set, at most as large."""
    info = ctx.data.info
    name, _, root_text = spec.partition(":")
    root: Path | None = Path(root_text).expanduser() if root_text else None
    if root is None and name in (ctx.data_name, "image-folder"):
        root = ctx.data_root
    data = load_dataset(name, "test", root=root, image_size=info.image_size[0],
                        extra={"channels": str(info.channels)}, limit=len(ctx.data))
    return MatchedDataset(data, info.channels, info.image_size)


def detector_names() -> list[str]:
    """Every registered detector (the suite runs all), the classic ones first."""
    known = DETECTORS.names()
    return [*(n for n in DETECTOR_ORDER if n in known), *(n for n in known if n not in DETECTOR_ORDER)]


def ood_result(scores_in: torch.Tensor, scores_out: torch.Tensor) -> TaskResult:
    """AUROC, AUPR-in/out, FPR@95 and the downsampled ROC curve."""
    fpr, tpr, _ = roc_points(scores_in, scores_out)
    return TaskResult(
        metrics={"auroc": ood_auroc(scores_in, scores_out), "aupr_in": ood_aupr_in(scores_in, scores_out),
                 "aupr_out": ood_aupr_out(scores_in, scores_out), "fpr95": fpr_at_tpr(scores_in, scores_out, 0.95),
                 "n_in": float(scores_in.numel()), "n_out": float(scores_out.numel())},
        artifacts={"roc": downsample_curve(fpr, tpr, 200)},
    )


class RunCache:
    """What the tasks of one build share: fitted detectors, loaded OOD sets and logits per source
    (so MSP, MaxLogit and energy need one forward pass per set). Lives only as long as the task list."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.detectors: dict[str, Detector] = {}
        self.sets: dict[str, ImageDataset] = {}
        self.logits: dict[str, torch.Tensor] = {}
        self.in_scores: dict[str, torch.Tensor] = {}
        self.train_features: tuple[torch.Tensor, torch.Tensor] | None = None

    def detector(self, c: EvalContext, name: str) -> Detector:
        if name not in self.detectors:
            det = DETECTORS.get(name)()
            if DETECTORS.meta(name).needs_fit:
                if self.train_features is None:  # feature detectors share one pass over the fit subset
                    subset = fit_subset(c.split("train"), FIT_SUBSET, c.generator(SUITE, "fit-subset", device="cpu"))
                    out = forward(c, subset, logits=False, features=True, progress=False)
                    assert out.features is not None
                    self.train_features = (out.features, out.labels)
                assert isinstance(det, FeatureDetector), f"{name} needs fitting but takes no features"
                det.fit_features(*self.train_features)
            self.detectors[name] = det
        return self.detectors[name]

    def batches(self, c: EvalContext, source: str | None) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        """Batches of the test set (``source`` None), of a near-OOD corruption cell, or of an OOD set."""
        if source is not None and source.startswith(NEAR_OOD_PREFIX):
            cell = CorruptionCell(source[len(NEAR_OOD_PREFIX):], NEAR_OOD_SEVERITY, self.table)
            return corrupted_batches(c, cell)
        if source is not None and source not in self.sets:
            self.sets[source] = load_ood_set(c, source)
        return c.batches(self.sets[source] if source is not None else None)

    def scores(self, c: EvalContext, det: Detector, source: str | None) -> torch.Tensor:
        if isinstance(det, LogitDetector):
            key = source or ""
            if key not in self.logits:
                out = forward(c, batches=self.batches(c, source), progress=False)
                assert out.logits is not None
                self.logits[key] = out.logits.double()
            return det.score_logits(self.logits[key])
        out = forward(c, batches=self.batches(c, source), logits=False, score=lambda x: det.score(c.model, x),
                      progress=False)
        assert out.scores is not None
        return out.scores


def build_ood(ctx: EvalContext, opts: OODOptions) -> list[Task]:
    sets = default_ood_sets(opts, ctx.data.info.channels, ctx.data.info.image_size)
    cache = RunCache(resolve_table(opts.params, ctx.data.info.image_size))

    def run_for(set_spec: str, name: str) -> Callable[[EvalContext], TaskResult]:
        def run(c: EvalContext) -> TaskResult:
            det = cache.detector(c, name)
            if name not in cache.in_scores:
                cache.in_scores[name] = cache.scores(c, det, None)
            result = ood_result(cache.in_scores[name], cache.scores(c, det, set_spec))
            c.progress.advance(len(c.data))
            return result

        return run

    tasks = []
    for set_spec in sets:
        if not set_spec.startswith(NEAR_OOD_PREFIX):
            cache.sets[set_spec] = load_ood_set(ctx, set_spec)  # missing sets fail before any work
        for name in detector_names():
            params = {"ood_set": set_spec, "detector": name, "limit": ctx.run.limit, "n_in": len(ctx.data),
                      "fit_subset": FIT_SUBSET if DETECTORS.meta(name).needs_fit else 0}
            tasks.append(Task(OODPair(set_spec, name), params, run_for(set_spec, name)))
    return tasks


def summarize_ood(ctx: EvalContext, opts: OODOptions, rows: list[TaskRow]) -> list[tuple[Summary, TaskResult]]:
    """Mean AUROC and FPR@95 of each detector over the OOD sets it ran on."""
    by_detector: dict[str, list[TaskRow]] = {}
    for r in rows:
        if isinstance(r.id.task, OODPair):
            by_detector.setdefault(r.id.task.detector, []).append(r)
    out: dict[str, float] = {}
    for name, members in by_detector.items():
        for metric in ("auroc", "fpr95"):
            values = [r.metrics[metric] for r in members if metric in r.metrics]
            if values:
                out[f"{metric}_mean/{name}"] = sum(values) / len(values)
    return [(Summary(SUITE), TaskResult(out))] if out else []


SUITES.add(SUITE, Suite(SUITE, "OOD detection (MSP, MaxLogit, energy, ODIN, Mahalanobis, KNN) against OOD sets",
                        OODOptions, build_ood, summarize_ood),
           SuiteMeta(("Hendrycks & Gimpel 2017, arXiv:1610.02136",)))
