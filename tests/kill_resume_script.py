"""Run by test_store.py in a subprocess: a 8-task suite of real evaluations, killable midway."""

import sys
from dataclasses import dataclass

import torch

from shiftlab.core.identity import TaskIdentity, identity_kind
from shiftlab.evaluation import SUITES, Suite, Task, load_subject, make_context, run_suites
from shiftlab.evaluation.context import RunOptions
from shiftlab.evaluation.forward import forward
from shiftlab.evaluation.metrics import classification_result
from shiftlab.evaluation.suite import NoOptions, SuiteMeta
from shiftlab.store import Store

N_TASKS = 8


@identity_kind("darken", suite="test-darken")
@dataclass(frozen=True, slots=True)
class Darken(TaskIdentity):
    level: int


def darken(level: int):
    def run(ctx):
        out = forward(ctx, transform=lambda x, y, start: (x * (1 - level / 10)).clamp(0, 1))
        return classification_result(out.logits, out.labels)

    return run


SUITES.add("test-darken", Suite("test-darken", "test only", NoOptions, lambda ctx, opts: [
    Task(Darken(k), {"level": k}, darken(k)) for k in range(N_TASKS)
]), SuiteMeta())

if __name__ == "__main__":
    checkpoint, store_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    subject = load_subject(checkpoint, RunOptions(limit=3000, batch_size=500, device="cpu"))
    with Store(store_path) as store:
        report = run_suites(make_context(subject, store), [(SUITES.get("test-darken"), NoOptions())])
    print("RAN", ",".join(report.ran))
    print("SKIPPED", ",".join(report.skipped))
