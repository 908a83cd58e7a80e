"""The clean suite: accuracy, NLL, Brier score and ECE on the unshifted test set."""

from __future__ import annotations

from shiftlab.core.identity import CleanCell
from shiftlab.evaluation.context import EvalContext
from shiftlab.evaluation.forward import forward
from shiftlab.evaluation.metrics import classification_result
from shiftlab.evaluation.suite import SUITES, NoOptions, Suite, SuiteMeta, Task, TaskResult

ECE_BINS = 15


def run_clean(ctx: EvalContext) -> TaskResult:
    out = forward(ctx)
    assert out.logits is not None
    return classification_result(out.logits, out.labels)


def build_clean(ctx: EvalContext, opts: NoOptions) -> list[Task]:
    params = {"limit": ctx.run.limit, "n": len(ctx.data), "ece_bins": ECE_BINS}
    return [Task(CleanCell(), params, run_clean)]


SUITES.add("clean", Suite("clean", "accuracy, NLL, Brier and ECE on the clean test set", NoOptions, build_clean),
           SuiteMeta())
