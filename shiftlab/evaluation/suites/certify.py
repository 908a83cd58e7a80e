"""The certify suite: certified L2 robustness by randomized smoothing (Cohen, Rosenfeld & Kolter 2019,
"Certified Adversarial Robustness via Randomized Smoothing", arXiv:1902.02918), on the clean test set
and, with ``--corruptions``, on the corrupted images of the corruptions suite (the setting of Sun et al.
2021, "Certified Adversarial Defenses Meet Out-of-Distribution Corruptions", arXiv:2112.00659).

One task per :class:`~shiftlab.core.identity.CertifyCell` (sigma, n, n0, alpha, and the corruption cell
or clean). Images are certified in fixed blocks of ``CERTIFY_BLOCK`` images; each finished block is kept
in the store (per-image prediction, radius, p_A bound and label), so a killed run resumes at the first
unfinished block, and each image's noise comes from its own generator, keyed by (seed, cell, image
index), so no number depends on the block, the batch size or the resume point. A cell stores certified
accuracy at r ∈ {0, 0.25, 0.5, 0.75, 1}, the average certified radius (ACR; Zhai et al. 2020,
arXiv:2001.02378), the abstention rate, the whole curve and the per-image results.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from shiftlab.certify import (
    RADII,
    NoiseSeeds,
    Smoothed,
    accuracy_curve,
    average_certified_radius,
    certified_accuracy,
    certified_correct,
    noise_chunk,
)
from shiftlab.core.errors import UserError
from shiftlab.core.identity import CertifyCell, Summary
from shiftlab.evaluation.blocks import block_ranges, rebatch
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.corrupted import corrupted_blocks
from shiftlab.evaluation.flags import Flag, items, parse_int, parse_number
from shiftlab.evaluation.grid import CORRUPTIONS, PARAMS, SEVERITIES_FLAG, corruption_grid
from shiftlab.evaluation.suite import SUITES, Suite, SuiteMeta, Task, TaskResult
from shiftlab.shifts import SHIFTS
from shiftlab.store import TaskRow

SUITE = "certify"
CERTIFY_BLOCK = 16
"""Images per resumable unit (each image's noise is its own, so this never changes a number)."""


def parse_sigmas(value: Any) -> tuple[float, ...]:
    """Noise levels: positive numbers, e.g. '0.12,0.25,0.5'."""
    sigmas = tuple(parse_number(v, "--sigma") for v in items(value, "--sigma"))
    bad = [s for s in sigmas if s <= 0]
    if bad:
        raise UserError(f"--sigma values must be positive, got {bad[0]:g}")
    return tuple(dict.fromkeys(sigmas))


def parse_alpha(value: Any) -> float:
    """The failure probability of a certificate, in (0, 0.5)."""
    alpha = parse_number(value, "--alpha")
    if not 0 < alpha < 0.5:
        raise UserError(f"--alpha must lie in (0, 0.5), e.g. 0.001; got {value!r}")
    return alpha


def parse_samples(flag: str) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        return parse_int(value, flag, 1)

    return parse


SIGMA = Flag("sigma", "comma-separated noise levels σ of the smoothing distribution, e.g. 0.12,0.25,0.5",
             parse_sigmas, metavar="LIST")
SAMPLES = Flag("n", "noise samples per image that estimate p_A (Cohen et al. use 100000)", parse_samples("--n"),
               metavar="N")
SELECTION = Flag("n0", "noise samples per image that select the class to certify", parse_samples("--n0"),
                 metavar="N")
ALPHA = Flag("alpha", "failure probability of each certificate, e.g. 0.001", parse_alpha, metavar="P")


@dataclass(frozen=True)
class CertifyOptions:
    """Noise levels, sample counts and failure probability; the shared corruption flags add corrupted cells
    (without ``--corruptions`` only the clean test set is certified)."""

    sigma: tuple[float, ...] = (0.25,)
    n: int = 10_000
    n0: int = 100
    alpha: float = 0.001
    corruptions: tuple[str, ...] | None = None
    severities: tuple[int, ...] | None = None
    params: str | None = None
    FLAGS = (SIGMA, SAMPLES, SELECTION, ALPHA, CORRUPTIONS, SEVERITIES_FLAG, PARAMS)


def certify_cells(ctx: EvalContext, opts: CertifyOptions) -> list[CertifyCell]:
    """Clean cells for every sigma, then one cell per sigma and corruption cell asked for."""
    cells = [CertifyCell(s, opts.n, opts.n0, opts.alpha) for s in opts.sigma]
    if opts.corruptions:
        grid = corruption_grid(ctx.data.info.image_size, opts.corruptions, opts.severities, opts.params)
        cells += [CertifyCell(s, opts.n, opts.n0, opts.alpha, c.corruption, c.severity, c.table)
                  for s in opts.sigma for c in grid]
    return cells


def certify_blocks(ctx: EvalContext, cell: CertifyCell) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """(first index, images, labels) of every block of ``CERTIFY_BLOCK`` images, clean or corrupted (the
    corruptions suite's images, from the shared corruption path), on the device."""
    shift = cell.shift()
    if shift is not None:
        yield from rebatch(corrupted_blocks(ctx, shift), CERTIFY_BLOCK)
        return
    for start, stop in block_ranges(len(ctx.data), CERTIFY_BLOCK):
        yield start, *ctx.images(start, stop)


def certify_cell(ctx: EvalContext, cell: CertifyCell) -> dict[str, list[Any]]:
    """Certify every image of ``cell`` (finished blocks are read back from the store): per-image lists."""
    key = ctx.key(cell)
    done = ctx.store.load_batches(key)
    smoothed = Smoothed(ctx.model, cell.sigma)
    out: dict[str, list[Any]] = defaultdict(list)
    for b, (start, x, y) in enumerate(certify_blocks(ctx, cell)):
        if b not in done:
            noise = NoiseSeeds.for_images(ctx.run.seed, cell.key(), range(start, start + len(y)))
            cert = smoothed.certify(x, cell.n0, cell.n, cell.alpha, noise)
            done[b] = {"start": start, "label": y.tolist(), "prediction": cert.prediction.tolist(),
                       "radius": cert.radius.tolist(), "p_lower": cert.p_lower.tolist(), "count": cert.count.tolist()}
            ctx.store.save_batch(key, b, done[b])
        for name in ("label", "prediction", "radius", "p_lower", "count"):
            out[name] += done[b][name]
        ctx.progress.advance(len(y))
    return out


def certify_result(images: dict[str, list[Any]]) -> TaskResult:
    """Metrics and artifacts of one cell from its per-image results."""
    prediction = torch.tensor(images["prediction"], dtype=torch.int64)
    radius = torch.tensor(images["radius"], dtype=torch.float64)
    correct = certified_correct(prediction, torch.tensor(images["label"], dtype=torch.int64))
    n = len(prediction)
    metrics = {f"certified_accuracy/{r:g}": certified_accuracy(radius, correct, r) for r in RADII}
    metrics["acr"] = average_certified_radius(radius, correct)
    metrics["abstention_rate"] = float((prediction < 0).double().mean()) if n else float("nan")
    metrics["n"] = float(n)
    per_image = {"label": images["label"], "prediction": images["prediction"], "radius": images["radius"],
                 "correct": correct.tolist(), "p_lower": images["p_lower"], "count": images["count"]}
    return TaskResult(metrics, {"curve": accuracy_curve(radius, correct), "per_image": per_image})


def certify_task(ctx: EvalContext, cell: CertifyCell) -> Task:
    info = ctx.data.info
    params: dict[str, Any] = {
        "sigma": cell.sigma, "n": cell.n, "n0": cell.n0, "alpha": cell.alpha, "corruption": cell.corruption,
        "family": SHIFTS.meta(cell.corruption).family if cell.corruption else None, "severity": cell.severity,
        "table": cell.table, "seed": ctx.run.seed, "block": CERTIFY_BLOCK,
        "noise_chunk": noise_chunk((info.channels, *info.image_size)),
    }

    def run(ctx: EvalContext) -> TaskResult:
        started = time.perf_counter()
        result = certify_result(certify_cell(ctx, cell))
        result.metrics["seconds"] = time.perf_counter() - started
        return result

    return Task(cell, params, run)


def build_certify(ctx: EvalContext, opts: CertifyOptions) -> list[Task]:
    return [certify_task(ctx, cell) for cell in certify_cells(ctx, opts)]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def summarize_certify(ctx: EvalContext, opts: CertifyOptions,
                      rows: list[TaskRow]) -> list[tuple[Summary, TaskResult]]:
    """Per sigma (cells with the options' n, n0 and alpha): ACR, certified accuracy at every stored radius
    and abstention rate on the clean images, on the mean of the corrupted cells, per corruption family and
    per corruption (each averaged over its cells)."""
    groups: dict[tuple[float, str], list[dict[str, float]]] = defaultdict(list)
    for row in rows:
        cell = row.id.task
        if not isinstance(cell, CertifyCell) or (cell.n, cell.n0, cell.alpha) != (opts.n, opts.n0, opts.alpha):
            continue
        if cell.corruption is None:
            groups[(cell.sigma, "clean")].append(row.metrics)
            continue
        family = SHIFTS.meta(cell.corruption).family if cell.corruption in SHIFTS else "other"
        for where in ("corrupted", f"family:{family}", cell.corruption):
            groups[(cell.sigma, where)].append(row.metrics)
    if not groups:
        return []
    names = ["acr", "abstention_rate"] + [f"certified_accuracy/{r:g}" for r in RADII]
    metrics: dict[str, float] = {}
    for (sigma, where), found in sorted(groups.items()):
        for name in names:
            values = [m[name] for m in found if name in m]
            if values:
                base, _, radius = name.partition("/")
                suffix = f"/r={radius}" if radius else ""
                metrics[f"{base}/sigma={sigma:g}{suffix}/{where}"] = _mean(values)
    protocol = {"n": opts.n, "n0": opts.n0, "alpha": opts.alpha, "seed": ctx.run.seed,
                "sigmas": sorted({s for s, _ in groups}), "where": sorted({w for _, w in groups}),
                "radii": list(RADII), "block": CERTIFY_BLOCK}
    return [(Summary(SUITE), TaskResult(metrics, {"protocol": protocol}))]


SUITES.add(SUITE, Suite(SUITE, "certified L2 robustness by randomized smoothing (PREDICT/CERTIFY), clean and on "
                               "corrupted images; certified accuracy per radius and ACR", CertifyOptions,
                        build_certify, summarize_certify),
           SuiteMeta(("Cohen, Rosenfeld & Kolter 2019, arXiv:1902.02918",
                      "Sun et al. 2021, arXiv:2112.00659")))
