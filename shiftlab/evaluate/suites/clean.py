"""The clean suite: accuracy, NLL, Brier score and ECE on the unshifted test set."""

from __future__ import annotations

from shiftlab.evaluate.classification import evaluate_classification
from shiftlab.evaluate.tasks import SUITES, EvalContext, Suite, Task


def build_clean(ctx: EvalContext) -> list[Task]:
    return [
        Task(
            key="clean",
            suite="clean",
            params={"limit": ctx.options.limit, "n": len(ctx.data), "ece_bins": 15},
            run=lambda c: evaluate_classification(c, label="clean"),
        )
    ]


SUITES.add("clean", Suite("clean", "accuracy, NLL, Brier and ECE on the clean test set", build_clean))
