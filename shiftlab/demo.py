"""`make demo`: train a quick small-cnn on Fashion-MNIST, run every evaluation suite on it, evaluate
the zoo (small-cnn trained with every recipe, ``zoo/``) with the same protocol, and write the report.

Each later feature adds one step to ``DEMO_STEPS``. Reruns reuse the trained checkpoint and every
finished task in the store, so an interrupted demo resumes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from shiftlab.evaluate import SuiteOptions, make_context, run_suites
from shiftlab.evaluate.cache import EvalCache
from shiftlab.store import Store
from shiftlab.train import TrainConfig, train
from shiftlab.zoo.evaluation import zoo_options


@dataclass
class DemoRun:
    """What a demo step can use: the trained checkpoint, the store, and an ``evaluate`` shortcut."""

    out: Path
    checkpoint: Path
    store_path: Path
    console: Console
    make_progress: Callable[..., Any]
    eval_progress: Callable[[Any], Any]
    options: SuiteOptions = field(default_factory=lambda: zoo_options(DEMO_LIMIT))
    timings: dict[str, float] = field(default_factory=dict)
    cache: EvalCache = field(default_factory=EvalCache.create)  # corrupted images/logits shared by the steps

    def evaluate(self, title: str, suites: list[str], checkpoint: Path | None = None, **options: Any) -> list[Any]:
        """Run ``suites`` on the demo model (or ``checkpoint``) with overrides of the demo protocol; print a table."""
        from shiftlab.cli import print_results

        t0 = time.perf_counter()
        opts = replace(self.options, **options)
        with Store(self.store_path) as db, self.make_progress() as progress:
            ctx = make_context(checkpoint or self.checkpoint, None, db, opts, progress=self.eval_progress(progress),
                               cache=self.cache)
            report = run_suites(ctx, suites)
        print_results(self.console, report.rows, f"{title}: {ctx.card.name} on {ctx.dataset_key}")
        self.timings[title] = time.perf_counter() - t0
        return report.rows


DemoStep = Callable[[DemoRun], None]


# Every suite, for the demo model and every zoo model, runs on the same first DEMO_LIMIT test images
# with the zoo's protocol, so the report and the zoo table compare like with like. 17 models × 95
# corruption cells fit the demo's 10 minutes at 200 images; the zoo cards' headline metrics are
# measured on 1,000 (`shiftlab zoo evaluate --update-cards`).
DEMO_LIMIT = 200
QUICK_TRAIN_LIMIT = 20_000  # the demo's own model: one epoch on the first 20k training images


def clean_step(run: DemoRun) -> None:
    """clean evaluation: accuracy, NLL, Brier, ECE"""
    run.evaluate("clean test set", ["clean"])


def adversarial_step(run: DemoRun) -> None:
    """adversarial robustness: APGD-CE (Croce & Hein 2020), Linf eps 0.1"""
    run.evaluate("adversarial (apgd-ce, linf, eps 0.1)", ["adversarial"])


def corruptions_step(run: DemoRun) -> None:
    """common corruptions (Hendrycks & Dietterich 2019): 19 corruptions × 5 severities"""
    run.evaluate("common corruptions (19 × 5 severities)", ["corruptions"])


def calibration_step(run: DemoRun) -> None:
    """calibration: ECE/MCE/NLL/Brier before and after temperature scaling, clean and under corruption"""
    run.evaluate("calibration (temperature fitted on val)", ["calibration"])


def ood_step(run: DemoRun) -> None:
    """OOD detection: MSP, MaxLogit, energy, ODIN, Mahalanobis, KNN vs digits and noise sets"""
    run.evaluate("OOD detection (ID = Fashion-MNIST test)", ["ood"])


def zoo_step(run: DemoRun) -> None:
    """the zoo: small-cnn trained with every recipe, evaluated with the same protocol"""
    from shiftlab.cli import print_checks, run_zoo_evaluation, zoo_headline_table
    from shiftlab.zoo import installed

    t0 = time.perf_counter()
    models = installed()
    if not models:
        run.console.print("no zoo checkpoints found (zoo/ or $SHIFTLAB_ZOO); skipping the zoo")
        return
    jobs = min(len(models), os.cpu_count() or 1)  # one single-threaded process per core
    rows, checks = run_zoo_evaluation(models, run.store_path, run.options, jobs, eval_progress=run.eval_progress)
    run.console.print(zoo_headline_table(rows, f"zoo on fashion-mnist[:{run.options.limit}] (%; APGD-CE at Linf 0.1)"))
    print_checks(run.console, checks)
    run.timings["zoo"] = time.perf_counter() - t0


DEMO_STEPS: list[DemoStep] = [clean_step, adversarial_step, corruptions_step, calibration_step, ood_step, zoo_step]


def report_step(run: DemoRun) -> None:
    """robustness report: leaderboard, robustness card and comparison pages from the store"""
    from shiftlab.report import write_report

    t0 = time.perf_counter()
    with Store(run.store_path) as db:
        index = write_report(db, run.out / "report", "html")
        write_report(db, run.out / "report", "md")
    run.timings["report"] = time.perf_counter() - t0
    run.console.print(f"report: {index.resolve()} (open it in a browser; works offline)")


DEMO_STEPS.append(report_step)  # keep the report last: add new steps to the list above


def run_demo(out: Path, console: Console, make_progress: Callable[..., Any], train_progress: Callable[[Any], Any],
             eval_progress: Callable[[Any], Any], limit: int = DEMO_LIMIT) -> DemoRun:
    """Train (or reuse) the demo model, then run every demo step."""
    from rich.progress import TextColumn

    start = time.perf_counter()
    config = TrainConfig(out=str(out / "small-cnn-erm-quick"), epochs=1, train_limit=QUICK_TRAIN_LIMIT,
                         name="small-cnn-erm-quick")
    console.rule(f"[bold]1. training a quick small-cnn (ERM, 1 epoch on {QUICK_TRAIN_LIMIT:,} images) on Fashion-MNIST")
    with make_progress(TextColumn("{task.fields[stats]}")) as progress:
        result = train(config, train_progress(progress), resume=True)
    t = result.card.training
    console.print(f"test accuracy {t['test_accuracy']:.4f} after {t['epochs_done']} epochs "
                  f"({t['train_seconds']:.0f}s of training); checkpoint {result.checkpoint}")
    run = DemoRun(out, result.checkpoint, out / "shiftlab.db", console, make_progress, eval_progress,
                  zoo_options(limit))
    run.timings["training"] = time.perf_counter() - start
    for i, step in enumerate(DEMO_STEPS, start=2):
        console.rule(f"[bold]{i}. {(step.__doc__ or step.__name__).strip().splitlines()[0]}")
        step(run)
    console.rule("[bold]done")
    console.print("time per step: " + ", ".join(f"{k} {v:.0f}s" for k, v in run.timings.items()), highlight=False)
    console.print(f"results store: {run.store_path.resolve()}  ({time.perf_counter() - start:.0f}s in all)")
    return run
