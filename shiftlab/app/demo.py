"""`make demo`: train a quick small-cnn on Fashion-MNIST, run the five core suites on it (clean,
corruptions, adversarial, calibration, OOD), evaluate the zoo with the same protocol, run the other shift
families on the quick model (spatial, translation, Fourier, stability, natural shift, test-time adaptation)
and certification on the zoo's noise-trained model, and write the report.

Each later feature adds one step to ``DEMO_STEPS``. Reruns reuse the trained checkpoint and every
finished task in the store, so an interrupted demo resumes. The demo talks to the terminal only
through a :class:`~shiftlab.app.presenter.Presenter`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shiftlab.app.evaluate import evaluate_model, options_for
from shiftlab.app.presenter import Presenter
from shiftlab.app.zoo import installed
from shiftlab.app.zoo.checks import run_checks
from shiftlab.app.zoo.evaluation import evaluate_zoo
from shiftlab.app.zoo.table import ZOO_OPTIONS
from shiftlab.evaluation.cache import EvalCache
from shiftlab.store import Store, TaskRow
from shiftlab.training import TrainConfig, train

# Every suite, for the demo model and every zoo model, runs on the same first DEMO_LIMIT test images
# with the zoo's protocol, so the report and the zoo table compare like with like. The zoo cards'
# headline metrics are measured on 1,000 (`shiftlab zoo evaluate --update-cards`).
DEMO_LIMIT = 200
QUICK_TRAIN_LIMIT = 20_000  # the demo's own model: one epoch on the first 20k training images
DEMO_EPS = (0.05, 0.1, 0.2)  # the demo model's adversarial curve over several budgets
CERTIFY_LIMIT = 50  # certification draws 1,100 noisy copies per image


@dataclass
class DemoRun:
    """What a demo step can use: the trained checkpoint, the store, the presenter and an evaluate shortcut."""

    out: Path
    checkpoint: Path
    store_path: Path
    presenter: Presenter
    limit: int = DEMO_LIMIT
    timings: dict[str, float] = field(default_factory=dict)
    cache: EvalCache = field(default_factory=EvalCache.create)  # corrupted images/logits shared by the steps

    def evaluate(self, title: str, suites: list[str], checkpoint: Path | str | None = None, limit: int | None = None,
                 **options: Any) -> list[TaskRow]:
        """Run ``suites`` on the demo model (or ``checkpoint``) with the zoo protocol on the first ``limit`` (default
        the demo's) test images; show the rows."""
        t0 = time.perf_counter()
        with self.presenter.eval_progress() as progress:
            report = evaluate_model(checkpoint or self.checkpoint, suites, store=self.store_path,
                                    options=options_for(suites, {**ZOO_OPTIONS, **options}),
                                    limit=min(self.limit, limit or self.limit), device="cpu", progress=progress,
                                    cache=self.cache)
        self.presenter.results(title, report.rows)
        self.timings[title] = time.perf_counter() - t0
        return report.rows


DemoStep = Callable[[DemoRun], None]


def clean_step(run: DemoRun) -> None:
    """clean evaluation: accuracy, NLL, Brier, ECE"""
    run.evaluate("clean test set", ["clean"])


def adversarial_step(run: DemoRun) -> None:
    """adversarial robustness: APGD-CE (Croce & Hein 2020) and FGSM over L∞ budgets 0.05, 0.1, 0.2"""
    run.evaluate("adversarial (L∞)", ["adversarial"], eps=DEMO_EPS, attack=("apgd-ce", "fgsm"))


def corruptions_step(run: DemoRun) -> None:
    """common corruptions (Hendrycks & Dietterich 2019): 19 corruptions × 5 severities, mCE against the zoo's ERM"""
    run.evaluate("common corruptions (19 × 5 severities)", ["corruptions"], baseline="zoo:erm")


def calibration_step(run: DemoRun) -> None:
    """calibration: ECE/MCE/NLL/Brier before and after temperature scaling, clean and under corruption"""
    run.evaluate("calibration (temperature fitted on val)", ["calibration"])


def ood_step(run: DemoRun) -> None:
    """OOD detection: MSP, MaxLogit, energy, ODIN, Mahalanobis, KNN vs digits and noise sets"""
    run.evaluate("OOD detection (ID = Fashion-MNIST test)", ["ood"])


def spatial_step(run: DemoRun) -> None:
    """spatial robustness (Engstrom et al. 2019; random and worst-of-10 within ±30°, ±3 px), accuracy vs translation
    on a larger canvas, and the Fourier heat map (Yin et al. 2019; every other frequency)"""
    run.evaluate("spatial, translation and Fourier sensitivity", ["spatial", "translation", "fourier"],
                 spatial_modes="random,worst-of-k", fourier_stride="2")


def stability_step(run: DemoRun) -> None:
    """prediction stability along ImageNet-P-style perturbation sequences: flip probability, mFR against the zoo's ERM"""
    run.evaluate("perturbation stability (flip rates)", ["stability"], baseline="zoo:erm")


def natural_step(run: DemoRun) -> None:
    """natural-style shift (re-rendered test sets) and effective robustness against the zoo's probit-linear fit"""
    run.evaluate("natural shift and effective robustness", ["natural"])


def adaptation_step(run: DemoRun) -> None:
    """test-time adaptation: BatchNorm statistics re-estimated on each batch of corrupted images (every cell of
    the corruptions step, so its summary keeps covering all severities)"""
    run.evaluate("test-time adaptation (BN adaptation)", ["corruptions"], baseline="zoo:erm", adapt="bn-adapt")


def certify_step(run: DemoRun) -> None:
    """certified L2 robustness by randomized smoothing (Cohen et al. 2019) of the zoo's noise-trained model,
    clean and under fog (n = 1,000 samples per image, first 50 images)"""
    run.evaluate("certified robustness (zoo:gaussian-smoothing, σ = 0.25)", ["certify"], "zoo:gaussian-smoothing",
                 CERTIFY_LIMIT, sigma="0.25", n="1000", n0="100", corruptions="fog", severities="3")


def zoo_step(run: DemoRun) -> None:
    """the zoo: models shiftlab trained (every recipe, three architectures), evaluated with the same protocol"""
    t0 = time.perf_counter()
    models = installed()
    if not models:
        run.presenter.message("no zoo checkpoints found (package data or $SHIFTLAB_ZOO); skipping the zoo")
        return
    jobs = min(len(models), os.cpu_count() or 1)  # one single-threaded process per core
    rows, _ = evaluate_zoo(models, run.store_path, limit=run.limit, jobs=jobs, presenter=run.presenter,
                           cache=run.cache)
    run.presenter.zoo_table(f"zoo on fashion-mnist[:{run.limit}] (%; APGD-CE at L∞ 0.1)", rows)
    pgd = next((zm.card.training for zm in models if zm.name == "pgd-at"), None)
    run.presenter.checks(run_checks(rows, pgd))
    run.timings["zoo"] = time.perf_counter() - t0


def report_step(run: DemoRun) -> None:
    """robustness report: leaderboard, robustness card and comparison pages from the store"""
    from shiftlab.report import write_report

    t0 = time.perf_counter()
    with Store(run.store_path) as db:
        index = write_report(db, run.out / "report", "html")
        write_report(db, run.out / "report", "md")
    run.timings["report"] = time.perf_counter() - t0
    run.presenter.message(f"report: {index.resolve()} (open it in a browser; works offline)")


DEMO_STEPS: list[DemoStep] = [clean_step, adversarial_step, corruptions_step, calibration_step, ood_step, zoo_step,
                              spatial_step, stability_step, natural_step, adaptation_step, certify_step,
                              report_step]  # keep the report last


def run_demo(out: Path, presenter: Presenter, limit: int = DEMO_LIMIT) -> DemoRun:
    """Train (or reuse) the demo model, then run every demo step."""
    start = time.perf_counter()
    config = TrainConfig(out=str(out / "small-cnn-erm-quick"), epochs=1, train_limit=QUICK_TRAIN_LIMIT,
                         name="small-cnn-erm-quick")
    presenter.section(f"1. training a quick small-cnn (ERM, 1 epoch on {QUICK_TRAIN_LIMIT:,} images) on Fashion-MNIST")
    with presenter.train_progress() as progress:
        result = train(config, progress, resume="auto")
    t = result.card.training
    presenter.message(f"test accuracy {t['test_accuracy']:.4f} after {t['epochs_done']} epochs "
                      f"({t['train_seconds']:.0f}s of training); checkpoint {result.checkpoint}")
    run = DemoRun(out, result.checkpoint, out / "shiftlab.db", presenter, limit)
    run.timings["training"] = time.perf_counter() - start
    for i, step in enumerate(DEMO_STEPS, start=2):
        presenter.section(f"{i}. {(step.__doc__ or step.__name__).strip().splitlines()[0]}")
        step(run)
    presenter.section("done")
    presenter.message("time per step: " + ", ".join(f"{k} {v:.0f}s" for k, v in run.timings.items()))
    presenter.message(f"results store: {run.store_path.resolve()}  ({time.perf_counter() - start:.0f}s in all)")
    return run
