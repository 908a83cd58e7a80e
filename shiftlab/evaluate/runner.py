"""The resumable runner: build a suite's tasks, skip those in the store, run the rest in order,
write each finished task in one transaction, then refresh the suite's summary.

A crash or Ctrl-C keeps every task already written; a rerun resumes.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import torch

from shiftlab.data import load_dataset
from shiftlab.evaluate.cache import EvalCache
from shiftlab.evaluate.tasks import SUITES, EvalContext, NullProgress, Progress, SuiteOptions, Task
from shiftlab.models import load_model
from shiftlab.store import Store, TaskRow

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a run did: keys of tasks run and skipped, and every stored row of the suites."""

    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    rows: list[TaskRow] = field(default_factory=list)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def register_model(store: Store, ctx: EvalContext, checkpoint: str) -> None:
    card = ctx.card
    store.upsert_model(
        card.fingerprint,
        name=card.name or Path(checkpoint).stem,
        arch=card.config.arch,
        dataset=card.dataset,
        recipe=str(card.recipe.get("name", "")),
        num_params=count_params(ctx.model),
        card=card.to_dict(),
        checkpoint_path=str(Path(checkpoint).resolve()),
    )


def make_context(
    checkpoint: str | Path,
    dataset: str | None,
    store: Store,
    options: SuiteOptions,
    *,
    device: str = "cpu",
    data_root: str | Path | None = None,
    progress: Progress | None = None,
    cache: EvalCache | None = None,
) -> EvalContext:
    """Load the model and the test split and register the model in the store; ``cache`` (default: a
    fresh one) may be shared by the contexts of several models evaluated on the same data."""
    model, card = load_model(checkpoint, device=device)
    name = dataset or card.dataset
    root = Path(data_root).expanduser() if data_root is not None else None
    data = load_dataset(name, "test", root=root, limit=options.limit)
    ctx = EvalContext(
        model=model,
        card=card,
        dataset=name,
        data=data,
        options=options,
        store=store,
        device=torch.device(device),
        run_id=uuid.uuid4().hex,
        data_root=root,
        progress=progress or NullProgress(),
        cache=cache if cache is not None else EvalCache.create(),
    )
    check_compatible(ctx)
    register_model(store, ctx, str(checkpoint))
    return ctx


def check_compatible(ctx: EvalContext) -> None:
    from shiftlab.errors import UserError

    cfg, info = ctx.card.config, ctx.data.info
    if cfg.in_channels != info.channels or cfg.num_classes != info.num_classes:
        raise UserError(
            f"model {cfg.arch!r} expects {cfg.in_channels}-channel images and {cfg.num_classes} classes, but "
            f"{ctx.dataset!r} has {info.channels} channels and {info.num_classes} classes"
        )


def run_task(ctx: EvalContext, task: Task) -> None:
    """Run one task and write it (metrics + artifacts) in one transaction."""
    started = time.time()
    t0 = time.perf_counter()
    result = task.run(ctx)
    duration = time.perf_counter() - t0
    metrics = dict(result.metrics)
    metrics.setdefault("seconds", duration)
    ctx.store.write_task(
        ctx.task_id(task.key),
        suite=task.suite,
        params=task.params,
        metrics=metrics,
        artifacts=result.artifacts,
        run_id=ctx.run_id,
        started_at=started,
        duration_s=duration,
    )


def run_suites(ctx: EvalContext, suites: list[str]) -> RunReport:
    """Run every task of the named suites that the store lacks, then refresh their summaries."""
    report = RunReport()
    chosen = [SUITES.get(name) for name in suites]  # unknown names fail before any work
    for suite in chosen:
        for task in suite.build(ctx):
            if ctx.store.has_task(ctx.task_id(task.key)):
                report.skipped.append(task.key)
                continue
            log.info("running %s", task.key)
            run_task(ctx, task)
            report.ran.append(task.key)
        if suite.summarize is not None:
            rows = [r for r in ctx.store.tasks(ctx.fingerprint, dataset=ctx.dataset_key, suite=suite.name)
                    if not r.id.task_key.endswith("/summary")]
            summary = suite.summarize(ctx, rows)
            if summary is not None:
                ctx.store.write_task(
                    ctx.task_id(f"{suite.name}/summary"),
                    suite=suite.name,
                    params={"summary_of": [r.id.task_key for r in rows]},
                    metrics=summary.metrics,
                    artifacts=summary.artifacts,
                    run_id=ctx.run_id,
                    started_at=time.time(),
                    duration_s=0.0,
                    replace=True,
                )
        report.rows.extend(ctx.store.tasks(ctx.fingerprint, dataset=ctx.dataset_key, suite=suite.name))
    return report
