"""Evaluate the zoo into a results store and read back one recipe × metric table.

Every zoo model runs the same suites with the same options (``zoo_options``), so the table compares
recipes and nothing else. The headline columns are the leaderboard's own (``report/leaderboard.py``):
clean accuracy, mean corruption accuracy (15 benchmark corruptions × 5 severities), robust accuracy
under APGD-CE at L∞ eps 0.1, ECE (15 bins) before and after temperature scaling, mean OOD AUROC.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shiftlab.evaluate import SuiteOptions, make_context, run_suites
from shiftlab.evaluate.cache import EvalCache
from shiftlab.models.checkpoint import read_card, write_card
from shiftlab.report.gather import gather
from shiftlab.report.leaderboard import build_leaderboard
from shiftlab.store import Store
from shiftlab.zoo.catalog import ZooModel
from shiftlab.zoo.workers import run_workers

ZOO_SUITES = ("clean", "corruptions", "adversarial", "calibration", "ood")
ZOO_EPS = 0.1
HEADLINE = {
    "clean_acc": "clean acc",
    "corruption_acc": "corruption acc",
    f"robust_linf_{ZOO_EPS:g}": f"APGD-CE L∞ {ZOO_EPS:g}",
    "ece": "ECE",
    "ece_ts": "ECE after TS",
    "ood_auroc": "OOD AUROC",
}


def zoo_options(limit: int | None, seed: int = 0, batch_size: int = 256) -> SuiteOptions:
    """The one protocol every zoo model is evaluated with (APGD-CE only: the ensemble is ``evaluate``'s job)."""
    return SuiteOptions(seed=seed, limit=limit, batch_size=batch_size, norm="linf", eps=(ZOO_EPS,), attacks=("apgd-ce",))


def evaluate_zoo(models: list[ZooModel], store: Store, options: SuiteOptions, suites: tuple[str, ...] = ZOO_SUITES,
                 progress: Callable[[], Any] | None = None,
                 on_model: Callable[[ZooModel, float], None] | None = None) -> None:
    """Run ``suites`` on every model (tasks already in the store are skipped, so a rerun resumes).

    ``progress()`` returns a fresh evaluation progress per model; ``on_model(model, seconds)`` is
    called after each.
    """
    cache = EvalCache.create()  # every model sees the same corrupted batches: generate each once
    for zm in models:
        t0 = time.perf_counter()
        ctx = make_context(zm.path, None, store, options, progress=progress() if progress else None, cache=cache)
        run_suites(ctx, list(suites))
        if on_model is not None:
            on_model(zm, time.perf_counter() - t0)


def evaluate_zoo_in_processes(models: list[ZooModel], store_path: Path, options: SuiteOptions, jobs: int,
                              zoo_dir: Path | None = None) -> None:
    """``evaluate_zoo`` split over ``jobs`` single-thread worker processes (``zoo.workers``); each
    generates its own corrupted batches and all write to the same store (SQLite WAL)."""
    base = ["zoo", "evaluate", "--store", str(store_path), "--limit", str(options.limit or 0),
            "--seed", str(options.seed), "--json", *(["--zoo", str(zoo_dir)] if zoo_dir is not None else [])]
    groups = [models[i::jobs] for i in range(jobs) if models[i::jobs]]
    run_workers([[*base, "--only", ",".join(m.name for m in g)] for g in groups], "zoo evaluation")


@dataclass(frozen=True)
class ZooRow:
    """One zoo model's line of the recipe × metric table (None: not evaluated, with no value)."""

    name: str
    recipe: str
    train_seconds: float | None
    metrics: dict[str, float | None]


def dataset_key(options: SuiteOptions, dataset: str = "fashion-mnist") -> str:
    return f"{dataset}[:{options.limit}]" if options.limit is not None else dataset


def zoo_table(models: list[ZooModel], store: Store, options: SuiteOptions) -> list[ZooRow]:
    """The headline metrics of every model from the store (those evaluated on ``options``' dataset key)."""
    key = dataset_key(options)
    board = build_leaderboard([ev for ev in gather(store) if ev.dataset == key])
    by_fp = {ev.fingerprint: cells for ev, cells in zip(board.evaluations, board.cells, strict=True)}
    rows = []
    for zm in models:
        cells = by_fp.get(zm.card.fingerprint, {})
        metrics = {k: (cells[k].value if k in cells else None) for k in HEADLINE}
        rows.append(ZooRow(zm.name, zm.entry.recipe, zm.card.training.get("train_seconds"), metrics))
    return rows


def update_cards(models: list[ZooModel], rows: list[ZooRow], options: SuiteOptions) -> None:
    """Write each model's headline metrics, with the protocol that produced them, into its zoo card."""
    protocol = {"dataset": dataset_key(options), "seed": options.seed, "suites": list(ZOO_SUITES),
                "corruptions": "15 benchmark corruptions x severities 1-5, table by image size",
                "attack": f"apgd-ce, linf, eps {ZOO_EPS:g}", "ece_bins": 15}
    for zm, row in zip(models, rows, strict=True):
        card = read_card(zm.path)
        card.metrics = {"protocol": protocol, **{k: v for k, v in row.metrics.items() if v is not None}}
        write_card(zm.path, card)
