"""Test-time adaptation on the zoo's BatchNorm models: source / BN / TENT / SITA / MEMO side by side.

Protocol: the 15 benchmark corruptions of Hendrycks & Dietterich 2019 at one severity (default 5,
CIFAR parameter table, seed 0) on the first ``--limit`` Fashion-MNIST test images, through the
corruptions and calibration suites (``--adapt``), into one store (rerunning resumes). Each method at
its defaults: BN adaptation (Schneider et al. 2020) with N = 0 and TENT (Wang et al. 2021, online in
test-set order, Adam lr 1e-3, one step) on batches of ``--adapt-batch-size``; SITA (Khurana et al.
2021) and MEMO (Zhang et al. 2022) on single images. Per model and method: mean corruption error and
mean ECE over the 15 cells, clean error, and the adaptation time per image measured during the run.
The cost is also timed in a paired way (``--time-images`` images of one cell, the methods in
alternating rounds, median), so load changes on a shared machine hit all methods alike.

Prints a table and a final JSON line.

    nice -n 10 python benchmarks/adapt.py --store /tmp/adapt.db --models erm,augmix,pgd-at --limit 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from shiftlab.adapt import adapter_args
from shiftlab.app.evaluate import evaluate_model
from shiftlab.core.identity import AdaptedCell, AdaptedSummary, CalibrationCell, CorruptionCell
from shiftlab.core.seeding import ImageStreams
from shiftlab.data import load_dataset
from shiftlab.evaluation.cache import EvalCache
from shiftlab.evaluation.corrupted import corrupt_block
from shiftlab.models import load_model
from shiftlab.shifts import benchmark_names
from shiftlab.store import TaskRow

METHODS = ("source", "bn-adapt", "tent", "sita", "memo")


def run_model(model: str, store: str, limit: int, severity: int, batch: int, cache: EvalCache,
              methods: tuple[str, ...]) -> list[TaskRow]:
    rows: list[TaskRow] = []
    base = {"corruptions": ",".join(benchmark_names()), "severities": str(severity)}
    for method in methods:
        options = dict(base) if method == "source" else {**base, "adapt": method}
        if method in ("bn-adapt", "tent"):
            options["adapt_batch_size"] = str(batch)
        t0 = time.perf_counter()
        report = evaluate_model(f"zoo:{model}", ["corruptions", "calibration"], store=store, options=options,
                                limit=limit, device="cpu", cache=cache)
        print(f"# {model} {method}: ran {len(report.ran)} task(s) in {time.perf_counter() - t0:.0f}s", flush=True)
        rows = report.rows
    return rows


def summarise(rows: list[TaskRow], severity: int) -> dict[str, dict[str, float]]:
    """Per method: mean corruption error, mean ECE, clean error, clean ECE, seconds per image."""
    out: dict[str, dict[str, float]] = {}
    names = set(benchmark_names())
    source = [r for r in rows if isinstance(r.id.task, CorruptionCell) and r.id.task.severity == severity
              and r.id.task.corruption in names]
    clean = next(r for r in rows if r.id.task == CalibrationCell())
    out["source"] = {"error": statistics.fmean(r.metrics["error"] for r in source),
                     "ece": statistics.fmean(r.metrics["ece"] for r in source), "cells": float(len(source)),
                     "clean_error": 1 - clean.metrics["accuracy"], "clean_ece": clean.metrics["ece"]}
    for row in rows:
        task = row.id.task
        if isinstance(task, AdaptedSummary) and task.of == "corruptions":
            m = row.metrics
            entry = out.setdefault(task.adapter, {})
            entry.update(error=m["mean_corruption_error"], ece=m["ece/all"], seconds_per_image=m["seconds_per_image"],
                         cells=float(row.artifacts["protocol"]["cells"]))
        if isinstance(task, AdaptedCell) and task.of == "calibration" and task.corruption is None:
            out.setdefault(task.adapter, {}).update(clean_error=1 - row.metrics["accuracy"], clean_ece=row.metrics["ece"])
    return out


def paired_times(model_name: str, images: int, rounds: int, batch: int) -> dict[str, float]:
    """Median seconds per image of each method on ``images`` images of fog at severity 5, in alternating rounds."""
    model, _ = load_model(f"zoo:{model_name}")
    x, _ = load_dataset("fashion-mnist", "test", limit=images).get_batch(torch.arange(images))
    x = corrupt_block(CorruptionCell("fog", 5, "cifar"), x, 0, 0)
    streams = ImageStreams.for_images(0, "bench", torch.arange(images))
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(rounds):
        for method in METHODS:
            t0 = time.perf_counter()
            if method == "source":
                with torch.inference_mode():
                    for i in range(0, images, batch):
                        model(x[i:i + batch])
            else:
                adapter = adapter_args(method).prepare(model)
                for i in range(0, images, batch):
                    adapter.step(x[i:i + batch], streams.subset(torch.arange(i, min(i + batch, images))))
            times[method].append((time.perf_counter() - t0) / images)
    return {m: statistics.median(v) for m, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--models", default="erm,augmix,pgd-at")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--severity", type=int, default=5)
    parser.add_argument("--adapt-batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--time-images", type=int, default=128)
    parser.add_argument("--time-rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    methods = tuple(m for m in args.methods.split(",") if m)
    cache = EvalCache.create()
    results: dict[str, Any] = {}
    for model in args.models.split(","):
        rows = run_model(model, args.store, args.limit, args.severity, args.adapt_batch_size, cache, methods)
        results[model] = summarise(rows, args.severity)
    print(f"\n15 benchmark corruptions, severity {args.severity}, first {args.limit} test images; "
          f"mean error / mean ECE (clean error), adaptation batch {args.adapt_batch_size} for BN and TENT")
    print("| model | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for model, by_method in results.items():
        cells = []
        for m in methods:
            r = by_method.get(m)
            cells.append("—" if r is None or "error" not in r else
                         f"{100 * r['error']:.1f} / {100 * r['ece']:.1f} ({100 * r.get('clean_error', float('nan')):.1f})")
        print(f"| {model} | " + " | ".join(cells) + " |")
    for model, by_method in results.items():
        chain = [by_method.get(m, {}).get("error") for m in ("source", "bn-adapt", "tent")]
        if None not in chain:
            holds = chain[0] > chain[1] > chain[2]  # type: ignore[operator]
            print(f"{model}: source → BN → TENT error {'falls' if holds else 'does not fall'} "
                  f"({' → '.join(f'{100 * e:.1f}' for e in chain)})")  # type: ignore[operator]
    timing = paired_times(args.models.split(",")[0], args.time_images, args.time_rounds, args.adapt_batch_size)
    print("\nms per image (paired, median of rounds): "
          + ", ".join(f"{m} {1000 * t:.2f}" for m, t in timing.items()))
    print(json.dumps({"benchmark": "adapt", "limit": args.limit, "severity": args.severity,
                      "adapt_batch_size": args.adapt_batch_size, "threads": args.threads, "results": results,
                      "paired_seconds_per_image": timing}))


if __name__ == "__main__":
    main()
