"""Test-time adaptation inside the suites (corruptions, calibration, natural): the shared ``--adapt``
flags, the validated setting, the adapted logits of a cell or test set and the per-setting summaries.
The adapters themselves are in ``shiftlab/adapt/``.

With ``--adapt NAME`` a suite adds, next to each of its unadapted tasks, an
:class:`~shiftlab.core.identity.AdaptedCell` task (an
:class:`~shiftlab.core.identity.AdaptedNaturalCell` for a natural-shift set): the same images (the one
corruption path, ``evaluation/corrupted.py``, or the shifted set) predicted by an adapter working on a
copy of the model (the evaluated model is never touched). The cell's images are fed in ascending test-set index in batches of
``--adapt-batch-size``; online adaptation carries its state across the cell's batches and starts
afresh at every cell, episodic adaptation resets before every batch. Unlike ``--batch-size``, the
adaptation batch changes the numbers, so it is part of the identity, with the adapter, all its
arguments, the mode and the order. Augmented copies draw from per-image streams keyed by (seed,
cell, image index).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from shiftlab.adapt import ADAPTERS, AdapterArgs, AdapterMeta, Mode, adapter_args
from shiftlab.core.errors import UserError
from shiftlab.core.identity import (
    ADAPT_MODES,
    AdaptedCell,
    AdaptedSummary,
    AdaptSetting,
    CorruptionCell,
    TaskIdentity,
)
from shiftlab.core.seeding import ImageStreams
from shiftlab.data import ImageDataset
from shiftlab.evaluation.blocks import rebatch
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.corrupted import corrupted_blocks
from shiftlab.evaluation.flags import Flag, items, parse_choice, parse_int
from shiftlab.evaluation.suite import Task, TaskResult
from shiftlab.shifts import SHIFTS, benchmark_names
from shiftlab.store import TaskRow

DEFAULT_BATCH = 128
"""The adaptation batch when none is given (TENT's CIFAR-10-C setting)."""


def parse_adapter(value: Any) -> str:
    name = str(value).strip()
    ADAPTERS.entry(name)
    return name


def parse_adapt_args(value: Any) -> tuple[tuple[str, str], ...]:
    """``key=value`` texts (comma-separated or repeated), a mapping or (key, value) pairs -> pairs; the
    values are checked against the adapter's arguments when the options are built."""
    if isinstance(value, Mapping):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    elif isinstance(value, Iterable) and not isinstance(value, str) and all(isinstance(v, tuple) for v in value):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in value]
    else:
        pairs = []
        for text in items(value, "--adapt-arg"):
            key, eq, val = text.partition("=")
            if not eq or not key.strip() or not val.strip():
                raise UserError(f"--adapt-arg expects key=value, got {text!r}")
            pairs.append((key.strip(), val.strip()))
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise UserError(f"--adapt-arg gives {sorted(k for k in keys if keys.count(k) > 1)[0]} twice")
    return tuple(pairs)


def parse_adapt_batch(value: Any) -> int:
    return parse_int(value, "--adapt-batch-size", 1)


ADAPT = Flag("adapt", f"test-time adaptation, stored next to the unadapted results: {', '.join(sorted(ADAPTERS.names()))}",
             parse_adapter, metavar="NAME")
ADAPT_ARG = Flag("adapt_arg", "an argument of the --adapt method as key=value (repeatable), e.g. lr=0.0005",
                 parse_adapt_args, repeatable=True, metavar="KEY=VALUE")
ADAPT_MODE = Flag("adapt_mode", "online (state carried across a cell's batches, in test-set order) or episodic "
                                "(reset before every batch); default: the method's", parse_choice(ADAPT_MODES, "--adapt-mode"),
                  metavar="MODE")
ADAPT_BATCH_SIZE = Flag("adapt_batch_size", f"images per adaptation batch (default {DEFAULT_BATCH}); unlike --batch-size "
                                            "it changes the numbers; single-image methods use 1", parse_adapt_batch,
                        metavar="N")
ADAPT_FLAGS = (ADAPT, ADAPT_ARG, ADAPT_MODE, ADAPT_BATCH_SIZE)


@dataclass(frozen=True)
class Adaptation:
    """A validated adaptation setting: the adapter's typed arguments, its metadata and the setting."""

    args: AdapterArgs
    meta: AdapterMeta
    setting: AdaptSetting

    @property
    def mode(self) -> Mode:
        return Mode(self.setting.mode)

    def identity(self, suite: str, cell: CorruptionCell | None) -> AdaptedCell:
        if cell is None:
            return AdaptedCell(suite, None, None, None, *self.setting.fields())
        return AdaptedCell(suite, cell.corruption, cell.severity, cell.table, *self.setting.fields())


@dataclass(frozen=True, kw_only=True)
class AdaptOptions:
    """The adaptation options of a suite (its options dataclass derives from this one and lists
    ``ADAPT_FLAGS``); validated on construction, before anything is loaded."""

    adapt: str | None = None
    adapt_arg: tuple[tuple[str, str], ...] = ()
    adapt_mode: str | None = None
    adapt_batch_size: int | None = None

    def __post_init__(self) -> None:
        adaptation(self)


def adaptation(opts: AdaptOptions) -> Adaptation | None:
    """The setting the options ask for (None without ``--adapt``); a bad combination is a UserError."""
    if opts.adapt is None:
        if opts.adapt_arg or opts.adapt_mode is not None or opts.adapt_batch_size is not None:
            raise UserError("--adapt-arg, --adapt-mode and --adapt-batch-size need --adapt NAME")
        return None
    name, meta = opts.adapt, ADAPTERS.meta(opts.adapt)
    args = adapter_args(name, opts.adapt_arg)
    mode = Mode(opts.adapt_mode) if opts.adapt_mode is not None else meta.default_mode
    if mode not in meta.modes:
        raise UserError(f"{name} runs {' or '.join(m.value for m in meta.modes)}, not {mode.value}")
    if meta.single_image:
        if opts.adapt_batch_size not in (None, 1):
            raise UserError(f"{name} adapts each image alone; drop --adapt-batch-size")
        batch = 1
    else:
        batch = opts.adapt_batch_size or DEFAULT_BATCH
    order = "index" if mode is Mode.ONLINE else None
    return Adaptation(args, meta, AdaptSetting(name, args.items(), batch, mode.value, order))


def adapted_logits(ctx: EvalContext, adaptation: Adaptation, cell: CorruptionCell | None,
                   shifted: tuple[str, ImageDataset] | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(logits, labels, adaptation seconds) of the adapted model on a corruption cell, (None) the clean
    test set, or ``shifted`` = (its identity key, images), another test set; computed once per model, data,
    seed, images and setting (shared by the suites)."""
    where = shifted[0] if shifted is not None else "clean" if cell is None else cell.key()
    key = (ctx.fingerprint, ctx.dataset.key(), ctx.run.seed, str(ctx.device), where, adaptation.setting)
    hit = ctx.cache.logits.get(key)
    if hit is not None:
        ctx.progress.advance(len(ctx.data))
        return hit[0], hit[1], float(hit[2])
    adapter = adaptation.args.prepare(ctx.model)
    feed = ctx.run.batch_size if adaptation.meta.single_image else adaptation.setting.batch_size
    parts = (ctx.batches(shifted[1]) if shifted is not None else
             corrupted_blocks(ctx, cell) if cell is not None else ctx.batches())
    logits, labels, seconds = [], [], 0.0
    for start, x, y in rebatch(parts, feed):
        if adaptation.mode is Mode.EPISODIC:
            adapter.reset()
        streams = ImageStreams.for_images(ctx.run.seed, ("adapt", where), torch.arange(start, start + len(y)))
        t0 = time.perf_counter()
        out = adapter.step(x, streams).float().cpu()
        seconds += time.perf_counter() - t0
        logits.append(out)
        labels.append(y.cpu())
        ctx.progress.advance(len(y))
    result = torch.cat(logits), torch.cat(labels)
    ctx.cache.logits.put(key, (*result, torch.tensor(seconds)))
    return result[0], result[1], seconds


Score = Callable[[EvalContext, torch.Tensor, torch.Tensor], TaskResult]


def adapted_tasks(ctx: EvalContext, adaptation: Adaptation | None, suite: str, cells: Sequence[CorruptionCell | None],
                  score: Score) -> list[Task]:
    """One adapted task per cell (None: the clean test set), scored like the suite's unadapted task;
    the adapter is prepared once here, so a model it cannot adapt fails before any work."""
    if adaptation is None:
        return []
    adaptation.args.prepare(ctx.model)
    common = adapted_params(ctx, adaptation)

    def run(cell: CorruptionCell | None) -> Callable[[EvalContext], TaskResult]:
        return adapted_runner(adaptation, cell, None, score)

    tasks = []
    for cell in cells:
        shift = {"corruption": None} if cell is None else {
            "corruption": cell.corruption, "family": SHIFTS.meta(cell.corruption).family, "severity": cell.severity,
            "table": cell.table}
        tasks.append(Task(adaptation.identity(suite, cell), {**shift, **common}, run(cell)))
    return tasks


def adapted_params(ctx: EvalContext, adaptation: Adaptation) -> dict[str, Any]:
    """The params every adapted task stores: the setting, the paper and the seed."""
    s = adaptation.setting
    return {"adapter": s.adapter, "args": dict(s.args), "batch_size": s.batch_size, "mode": s.mode, "order": s.order,
            "paper": f"{adaptation.meta.paper}, arXiv:{adaptation.meta.arxiv}", "seed": ctx.run.seed}


def adapted_runner(adaptation: Adaptation, cell: CorruptionCell | None, shifted: tuple[str, ImageDataset] | None,
                   score: Score) -> Callable[[EvalContext], TaskResult]:
    """A task's run: the adapted logits (see ``adapted_logits``) scored like the unadapted task, with the
    adaptation's time per image."""
    def compute(ctx: EvalContext) -> TaskResult:
        logits, labels, seconds = adapted_logits(ctx, adaptation, cell, shifted)
        result = score(ctx, logits, labels)
        result.metrics["seconds_per_image"] = seconds / max(1, len(labels))
        return result

    return compute


def error_of(metrics: Mapping[str, float]) -> float | None:
    """The top-1 error of a row (stored as ``error``, or as ``accuracy`` by the calibration suite)."""
    if "error" in metrics:
        return float(metrics["error"])
    return 1.0 - float(metrics["accuracy"]) if "accuracy" in metrics else None


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def adapted_summaries(rows: Sequence[TaskRow], suite: str, table: str,
                      unadapted: Callable[[CorruptionCell], TaskIdentity]) -> list[tuple[AdaptedSummary, TaskResult]]:
    """One summary per adaptation setting over the suite's adapted corruption cells of ``table``: mean
    error over the 15 benchmark corruptions (all corruptions when none of them is present) and every
    severity stored, the same mean of the unadapted cells (``unadapted(cell)`` names the unadapted
    identity of a cell) when all of them are stored, mean ECE before and after, and time per image."""
    by_task = {row.id.task: row for row in rows}
    groups: dict[AdaptSetting, dict[CorruptionCell, TaskRow]] = {}
    for row in rows:
        task = row.id.task
        cell = task.shift() if isinstance(task, AdaptedCell) and task.of == suite else None
        if isinstance(task, AdaptedCell) and cell is not None and cell.table == table:
            groups.setdefault(task.setting(), {})[cell] = row
    out = []
    for setting, cells in groups.items():
        names = {c.corruption for c in cells}
        benchmark = bool(names & set(benchmark_names()))
        pool = [c for c in cells if c.corruption in set(benchmark_names())] if benchmark else list(cells)
        errors = {c: e for c in cells if (e := error_of(cells[c].metrics)) is not None}
        before = {c: e for c in cells if (r := by_task.get(unadapted(c))) is not None and (e := error_of(r.metrics)) is not None}
        pooled = [c for c in pool if c in errors]
        if not pooled:
            continue
        metrics = {"mean_corruption_error": _mean([errors[c] for c in pooled])}
        metrics["mean_corruption_accuracy"] = 1.0 - metrics["mean_corruption_error"]
        if all(c in before for c in pooled):
            metrics["unadapted_mean_corruption_error"] = _mean([before[c] for c in pooled])
            metrics["adaptation_gain"] = metrics["unadapted_mean_corruption_error"] - metrics["mean_corruption_error"]
            eces = [by_task[unadapted(c)].metrics.get("ece") for c in pooled]
            if all(e is not None for e in eces):
                metrics["ece/unadapted"] = _mean([float(e) for e in eces if e is not None])
        if all("ece" in cells[c].metrics for c in pooled):
            metrics["ece/all"] = _mean([cells[c].metrics["ece"] for c in pooled])
        times = [cells[c].metrics["seconds_per_image"] for c in pooled if "seconds_per_image" in cells[c].metrics]
        if times:
            metrics["seconds_per_image"] = _mean(times)
        severities = sorted({c.severity for c in cells})
        for name in sorted(names):
            mine = [errors[c] for c in cells if c.corruption == name and c in errors]
            if mine:
                metrics[f"error/{name}"] = _mean(mine)
        per = {name: {"errors": [errors.get(CorruptionCell(name, s, table)) for s in severities],
                      "unadapted": [before.get(CorruptionCell(name, s, table)) for s in severities]}
               for name in sorted(names)}
        protocol = {"setting": setting.label(), "adapter": setting.adapter, "args": dict(setting.args),
                    "batch_size": setting.batch_size, "mode": setting.mode, "order": setting.order, "table": table,
                    "severities": severities, "cells": len(pooled),
                    "pool": "the benchmark corruptions stored" if benchmark else "every corruption stored"}
        identity = AdaptedSummary(suite, table, setting.adapter, setting.args, setting.batch_size, setting.mode,
                                  setting.order)
        out.append((identity, TaskResult(metrics, {"per_corruption": per, "protocol": protocol})))
    return sorted(out, key=lambda pair: pair[0].key())
