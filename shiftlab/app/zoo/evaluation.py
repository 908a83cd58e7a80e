"""Evaluate the zoo into a results store with one protocol, in-process or on worker processes.

Every zoo model runs the same suites with the same options (``table.ZOO_SUITES``/``ZOO_OPTIONS``),
so the table compares recipes and nothing else. With several jobs the models run as grid jobs
(``app/grid.py``) on the process or Ray executor; the in-process pass that follows (with progress
bars) only finds what they left undone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shiftlab.app.evaluate import evaluate_model
from shiftlab.app.grid import EvalJob, run_grid
from shiftlab.app.presenter import Presenter, SilentPresenter
from shiftlab.app.zoo.catalog import ZooModel
from shiftlab.app.zoo.table import ZOO_EPS, ZOO_OPTIONS, ZOO_SUITES, ZooRow, zoo_table
from shiftlab.core.identity import DatasetIdentity
from shiftlab.evaluation.cache import EvalCache
from shiftlab.evaluation.context import test_identity
from shiftlab.models.checkpoint import read_card, write_card
from shiftlab.store import Store

ZOO_DATASET = "fashion-mnist"


def evaluate_zoo(models: list[ZooModel], store: str | Path, *, limit: int | None, seed: int = 0, jobs: int = 1,
                 executor: str | None = None, ray_address: str | None = None, data_root: str | None = None,
                 device: str = "cpu", presenter: Presenter | None = None,
                 cache: EvalCache | None = None) -> tuple[list[ZooRow], DatasetIdentity]:
    """Evaluate ``models`` into ``store`` (resumable) and read the table back; (rows, the data's identity).

    With ``jobs`` > 1 (or an ``executor``), the models are first evaluated as grid jobs on the executor
    (``processes`` by default: one single-threaded worker per job); the in-process pass that follows
    (with progress bars) then only finds what they left undone, e.g. after a worker failed.
    """
    show = presenter or SilentPresenter()
    kind = executor or ("processes" if jobs > 1 else "local")
    if kind != "local":
        work = [EvalJob(str(zm.path), ZOO_SUITES, ZOO_OPTIONS, None, data_root, seed, limit, device=device)
                for zm in models]
        with show.busy(f"evaluating {len(models)} zoo models on the {kind} executor ({jobs} workers)"):
            outcomes = run_grid(work, store, kind, jobs, ray_address)
        if any(not o.ok for o in outcomes):
            show.message("some jobs failed; finishing their models here")
    cache = cache if cache is not None else EvalCache.create()  # every model sees the same corrupted batches
    with Store(store) as db:
        for zm in models:
            with show.eval_progress() as progress:
                evaluate_model(zm.path, ZOO_SUITES, store=db, options=ZOO_OPTIONS, limit=limit, seed=seed,
                               data_root=data_root, device=device, progress=progress, cache=cache)
        identity = test_identity(ZOO_DATASET, data_root, limit, db)
        return zoo_table(models, db, identity, seed), identity


def update_cards(models: list[ZooModel], rows: list[ZooRow], dataset: DatasetIdentity, seed: int) -> None:
    """Write each model's headline metrics, with the protocol that produced them, into its zoo card."""
    protocol: dict[str, Any] = {
        "dataset": dataset.label, "content": dataset.content, "seed": seed, "suites": list(ZOO_SUITES),
        "corruptions": "15 benchmark corruptions x severities 1-5, table by image size",
        "attack": f"apgd-ce, linf, eps {ZOO_EPS:g}", "ece_bins": 15,
    }
    for zm, row in zip(models, rows, strict=True):
        card = read_card(zm.path)
        card.metrics = {"protocol": protocol, **{k: v for k, v in row.metrics.items() if v is not None}}
        write_card(zm.path, card)


__all__ = ["evaluate_zoo", "update_cards"]
