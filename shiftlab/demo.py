"""`make demo`: train small-cnn on Fashion-MNIST (ERM, 3 epochs) and run the evaluation suites.

Each later feature adds one step to ``DEMO_STEPS``. Reruns reuse the trained checkpoint and every
finished task in the store, so an interrupted demo resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from shiftlab.evaluate import SuiteOptions, make_context, run_suites
from shiftlab.store import Store
from shiftlab.train import TrainConfig, train


@dataclass
class DemoRun:
    """What a demo step can use: the trained checkpoint, the store, and an ``evaluate`` shortcut."""

    out: Path
    checkpoint: Path
    store_path: Path
    console: Console
    make_progress: Callable[..., Any]
    eval_progress: Callable[[Any], Any]
    timings: dict[str, float] = field(default_factory=dict)

    def evaluate(self, title: str, suites: list[str], checkpoint: Path | None = None, **options: Any) -> list[Any]:
        """Run ``suites`` on the demo model (or ``checkpoint``) with SuiteOptions overrides; print a table."""
        from shiftlab.cli import print_results

        t0 = time.perf_counter()
        opts = replace(SuiteOptions(), **options)
        with Store(self.store_path) as db, self.make_progress() as progress:
            ctx = make_context(checkpoint or self.checkpoint, None, db, opts, progress=self.eval_progress(progress))
            report = run_suites(ctx, suites)
        print_results(self.console, report.rows, f"{title}: {ctx.card.name} on {ctx.dataset_key}")
        self.timings[title] = time.perf_counter() - t0
        return report.rows


DemoStep = Callable[[DemoRun], None]


# Every suite runs on the same first DEMO_LIMIT test images, so the report shows one comparable row.
DEMO_LIMIT = 2000


def clean_step(run: DemoRun) -> None:
    """clean evaluation: accuracy, NLL, Brier, ECE"""
    run.evaluate("clean test set", ["clean"], limit=DEMO_LIMIT)


def adversarial_step(run: DemoRun) -> None:
    """adversarial robustness: APGD-CE (Croce & Hein 2020), Linf eps 0.1"""
    run.evaluate("adversarial (apgd-ce, linf, eps 0.1)", ["adversarial"], limit=DEMO_LIMIT, norm="linf",
                 eps=(0.1,), attacks=("apgd-ce",))


def corruptions_step(run: DemoRun) -> None:
    """common corruptions (Hendrycks & Dietterich 2019): 19 corruptions × 5 severities"""
    run.evaluate("common corruptions (19 × 5 severities)", ["corruptions"], limit=DEMO_LIMIT)


def calibration_step(run: DemoRun) -> None:
    """calibration: ECE/MCE/NLL/Brier before and after temperature scaling, clean and at severities 1, 3, 5"""
    run.evaluate("calibration (temperature fitted on val)", ["calibration"], limit=DEMO_LIMIT, severities=(1, 3, 5))


def ood_step(run: DemoRun) -> None:
    """OOD detection: MSP, MaxLogit, energy, ODIN, Mahalanobis, KNN vs digits and noise sets"""
    run.evaluate("OOD detection (ID = Fashion-MNIST test)", ["ood"], limit=DEMO_LIMIT)


DEMO_STEPS: list[DemoStep] = [clean_step, adversarial_step, corruptions_step, calibration_step, ood_step]


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
             eval_progress: Callable[[Any], Any]) -> DemoRun:
    """Train (or reuse) the demo model, then run every demo step."""
    from rich.progress import TextColumn

    start = time.perf_counter()
    config = TrainConfig(out=str(out / "small-cnn-erm"), epochs=3, name="small-cnn-erm")
    console.rule("[bold]1. training small-cnn (ERM, 3 epochs) on Fashion-MNIST")
    with make_progress(TextColumn("{task.fields[stats]}")) as progress:
        result = train(config, train_progress(progress), resume=True)
    t = result.card.training
    console.print(f"test accuracy {t['test_accuracy']:.4f} after {t['epochs_done']} epochs "
                  f"({t['train_seconds']:.0f}s of training); checkpoint {result.checkpoint}")
    run = DemoRun(out, result.checkpoint, out / "shiftlab.db", console, make_progress, eval_progress)
    run.timings["training"] = time.perf_counter() - start
    for i, step in enumerate(DEMO_STEPS, start=2):
        console.rule(f"[bold]{i}. {(step.__doc__ or step.__name__).strip().splitlines()[0]}")
        step(run)
    console.rule("[bold]done")
    console.print(f"results store: {run.store_path.resolve()}  ({time.perf_counter() - start:.0f}s in all)")
    return run
