"""The stability suite: how often predictions flip along the perturbation sequences of ImageNet-P /
CIFAR-10-P (Hendrycks & Dietterich 2019, "Benchmarking Neural Network Robustness to Common Corruptions
and Perturbations", arXiv:1903.12261).

One task per :class:`~shiftlab.core.identity.StabilityCell` (a sequence of ``shifts/sequences.py``, at
least ten frames per image). The frames of a fixed block of test images (``evaluation/blocks.py``) are
drawn from the generators of (seed, cell identity, block, frame), so no frame depends on the batch size,
and all frames of a block go through the model together, in batches of ``--batch-size`` images. Per
image, as the reference evaluation computes it (``ImageNet-P/test.py`` of hendrycks/robustness, difficulty
1), the flip probability is

- for the noise sequences, the share of frames j ≥ 1 whose top-1 prediction differs from frame 0's;
- for the others, the share of consecutive frame pairs (j − 1, j) whose predictions differ;

and, when the model has at least five classes, the top-5 distance (the reference's ``dist(·, 'top5')``)
is averaged over the same pairs. A cell's FP (T5D) is the mean over images. Every finished block is kept
in the store, so a killed run resumes at the first unfinished block.

The summary has FP and T5D per sequence and their means over the sequences. With ``--baseline`` (the
flag the corruptions suite's mCE uses) it adds, per sequence, the flip rate FR = FP / FP^baseline and
T5D / T5D^baseline, and mFR and mT5D, their means over the sequences asked for (the paper normalises by
AlexNet). The baseline's rows (same data, seed and sequences) are evaluated first when missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from shiftlab.core.identity import StabilityCell, Summary, TaskIdentity
from shiftlab.core.seeding import make_generator
from shiftlab.evaluation.context import EvalContext, evaluated_fingerprint
from shiftlab.evaluation.corrupted import data_block_size
from shiftlab.evaluation.flags import Flag, parse_names
from shiftlab.evaluation.suite import SUITES, Prerequisite, Suite, SuiteMeta, Task, TaskResult
from shiftlab.evaluation.suites.corruptions import BASELINE
from shiftlab.shifts import SEQUENCES
from shiftlab.shifts.sequences import flip_probability_noise, flip_probability_steps, rank_distance
from shiftlab.store import TaskRow

SUITE = "stability"
TOP5_CLASSES = 5
"""The top-5 distance needs at least this many classes."""

SEQUENCES_FLAG = Flag("sequences", "comma-separated perturbation sequences of ImageNet-P/CIFAR-10-P (default: all: "
                      + ", ".join(SEQUENCES.names()) + ")", parse_names(SEQUENCES.entry, "--sequences"),
                      metavar="NAMES")


@dataclass(frozen=True)
class StabilityOptions:
    """Which sequences to run (default all) and the baseline that normalises mFR and mT5D."""

    sequences: tuple[str, ...] | None = None
    baseline: str | None = None
    FLAGS = (SEQUENCES_FLAG, BASELINE)


def chosen_sequences(opts: StabilityOptions) -> list[str]:
    return list(opts.sequences or SEQUENCES.names())


def frame_generators(seed: int, cell: StabilityCell, block: int, frames: int,
                     device: torch.device) -> list[torch.Generator]:
    """The generator of every frame of block ``block`` under ``cell``: the only source of its randomness."""
    return [make_generator(seed, cell.key(), "block", block, "frame", k, device=device) for k in range(frames)]


def frame_logits(model: nn.Module, frames: torch.Tensor, batch_size: int) -> torch.Tensor:
    """The model's logits on F×N frames (F×N×C×H×W in), in batches of ``batch_size`` images: F×N×K."""
    flat = frames.reshape(-1, *frames.shape[2:])
    with torch.inference_mode():
        logits = torch.cat([model(chunk).float() for chunk in flat.split(batch_size)])
    return logits.reshape(frames.shape[0], frames.shape[1], -1)


def sequence_scores(logits: torch.Tensor, noise: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per image, the flip probability and (with at least five classes, else None) the mean top-5 distance
    of the sequence's frames (F×N×K logits in)."""
    predictions = logits.argmax(-1)
    flips = flip_probability_noise(predictions) if noise else flip_probability_steps(predictions)
    distance = rank_distance(logits, noise) if logits.shape[-1] >= TOP5_CLASSES else None
    return flips, distance


def stability_images(ctx: EvalContext, cell: StabilityCell) -> dict[str, list[float]]:
    """Per-image flip probability and top-5 distance of every test image under ``cell`` (finished blocks are
    read back from the store; each new block is saved as soon as it is done)."""
    sequence = SEQUENCES.get(cell.sequence)
    count = sequence.count(*ctx.data.info.image_size)

    def compute(b: int, start: int, stop: int) -> dict[str, Any]:
        x, _ = ctx.images(start, stop)
        frames = torch.stack(sequence.frames(x, frame_generators(ctx.run.seed, cell, b, count, ctx.device)))
        flips, distance = sequence_scores(frame_logits(ctx.model, frames, ctx.run.batch_size), sequence.noise)
        return {"start": start, "flip_probability": flips.tolist(),
                "top5_distance": distance.tolist() if distance is not None else None}

    out: dict[str, list[float]] = {"flip_probability": [], "top5_distance": []}
    for block in ctx.stored_blocks(cell, data_block_size(ctx.data), compute):
        out["flip_probability"] += block["flip_probability"]
        out["top5_distance"] += block["top5_distance"] or []
    return out


def stability_result(images: dict[str, list[float]], frames: int) -> TaskResult:
    """A cell's FP (and T5D): the means over images of the per-image values."""
    flips, distance = images["flip_probability"], images["top5_distance"]
    n = len(flips)
    metrics = {"flip_probability": sum(flips) / n if n else float("nan"), "n": float(n), "frames": float(frames)}
    if distance:
        metrics["top5_distance"] = sum(distance) / len(distance)
    return TaskResult(metrics)


def stability_task(ctx: EvalContext, cell: StabilityCell) -> Task:
    sequence = SEQUENCES.get(cell.sequence)
    frames = sequence.count(*ctx.data.info.image_size)
    params: dict[str, Any] = {
        "sequence": cell.sequence, "noise": sequence.noise, "frames": frames, "seed": ctx.run.seed,
        "block": data_block_size(ctx.data), "limit": ctx.run.limit,
        "pairs": "frame 0 with each frame j >= 1" if sequence.noise else "consecutive frames (j - 1, j)",
        "top5_distance": ctx.data.info.num_classes >= TOP5_CLASSES,
    }
    return Task(cell, params, lambda c: stability_result(stability_images(c, cell), frames))


def build_stability(ctx: EvalContext, opts: StabilityOptions) -> list[Task]:
    return [stability_task(ctx, StabilityCell(name)) for name in chosen_sequences(opts)]


def stored_by_sequence(rows: list[TaskRow]) -> dict[str, dict[str, float]]:
    """{sequence: metrics} of stored stability cells."""
    return {row.id.task.sequence: row.metrics for row in rows if isinstance(row.id.task, StabilityCell)}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _rate(value: float | None, base: float | None) -> float | None:
    """value / base, None when either is missing or the base is 0 (the rate is then undefined)."""
    if value is None or base is None or base <= 0:
        return None
    return value / base


def baseline_rates(ctx: EvalContext, baseline: str, mine: dict[str, dict[str, float]], names: list[str],
                   complete: bool, metrics: dict[str, float]) -> dict[str, Any]:
    """FR and T5D rates per sequence, mFR and mT5D against the baseline's stored rows (written into
    ``metrics``); the artifact that documents them, with the reason when mFR is not reported."""
    fp = evaluated_fingerprint(baseline, ctx.run)
    base = stored_by_sequence(ctx.store.tasks(fp, dataset=ctx.dataset, suite=SUITE, seed=ctx.run.seed,
                                              with_artifacts=False))
    info: dict[str, Any] = {"fingerprint": fp, "checkpoint": str(baseline),
                            "per_sequence": {s: {m: base[s][m] for m in ("flip_probability", "top5_distance")
                                                 if m in base[s]} for s in names if s in base}}
    for what, rate in (("flip_probability", "flip_rate"), ("top5_distance", "top5_distance_rate")):
        for s in names:
            value = _rate(mine[s].get(what), base.get(s, {}).get(what))
            if value is not None:
                metrics[f"{rate}/{s}"] = value
    absent = [s for s in names if s not in base]
    never = [s for s in names if s in base and not base[s].get("flip_probability", 0.0) > 0]
    if absent:
        info["missing"] = (f"the baseline has no stability rows for {', '.join(absent)} on this data and seed; run: "
                           f"shiftlab evaluate --model {baseline} --suite {SUITE}")
    elif never:
        info["missing"] = (f"the baseline's predictions never flip along {', '.join(never)}, so its flip rate is "
                           "undefined there")
    elif not complete:
        info["missing"] = "mFR needs every sequence asked for; some have no stored row"
    if complete and all(f"flip_rate/{s}" in metrics for s in names):
        metrics["mfr"] = _mean([metrics[f"flip_rate/{s}"] for s in names])
    if complete and all(f"top5_distance_rate/{s}" in metrics for s in names):
        metrics["mt5d"] = _mean([metrics[f"top5_distance_rate/{s}"] for s in names])
    return info


def summarize_stability(ctx: EvalContext, opts: StabilityOptions,
                        rows: list[TaskRow]) -> list[tuple[TaskIdentity, TaskResult]]:
    """FP and T5D per sequence and their means; with a baseline, FR per sequence, mFR and mT5D."""
    mine = stored_by_sequence(rows)
    wanted = chosen_sequences(opts)
    names = [s for s in wanted if s in mine and "flip_probability" in mine[s]]
    if not names:
        return []
    metrics: dict[str, float] = {}
    for s in names:
        for m in ("flip_probability", "top5_distance"):
            if m in mine[s]:
                metrics[f"{m}/{s}"] = mine[s][m]
    metrics["mean_flip_probability"] = _mean([mine[s]["flip_probability"] for s in names])
    if all("top5_distance" in mine[s] for s in names):
        metrics["mean_top5_distance"] = _mean([mine[s]["top5_distance"] for s in names])
    complete = len(names) == len(wanted)
    artifacts: dict[str, Any] = {"protocol": {
        "sequences": names, "complete": complete, "seed": ctx.run.seed,
        "noise_sequences": [s for s in names if SEQUENCES.get(s).noise],
        "definition": ("FP: per image, the share of frame pairs whose top-1 predictions differ (noise sequences: "
                       "frame 0 with each frame j >= 1; the others: consecutive frames), averaged over images; T5D: "
                       "the top-5 distance averaged over the same pairs; FR = FP / FP of the baseline, mFR its mean "
                       "over sequences, mT5D likewise (Hendrycks & Dietterich 2019, arXiv:1903.12261)"),
    }}
    if opts.baseline is not None:
        artifacts["baseline"] = baseline_rates(ctx, opts.baseline, mine, names, complete, metrics)
    return [(Summary(SUITE), TaskResult(metrics, artifacts))]


def stability_prerequisites(opts: StabilityOptions, data_name: str) -> list[Prerequisite]:
    """The baseline's rows on the same sequences, evaluated first when missing."""
    if opts.baseline is None:
        return []
    return [Prerequisite(opts.baseline, (SUITE,), {"sequences": opts.sequences} if opts.sequences else {})]


SUITES.add(SUITE, Suite(SUITE, "prediction stability along the ImageNet-P/CIFAR-10-P perturbation sequences: flip "
                               "probability and top-5 distance, mFR and mT5D against a baseline", StabilityOptions,
                        build_stability, summarize_stability, stability_prerequisites),
           SuiteMeta(("Hendrycks & Dietterich 2019, arXiv:1903.12261",)))
