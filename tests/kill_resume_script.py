"""Run by test_store.py in a subprocess: a 8-task suite of real evaluations, killable midway."""

import sys

import torch

from shiftlab.evaluate import SUITES, Suite, SuiteOptions, Task, make_context, run_suites
from shiftlab.evaluate.classification import evaluate_classification
from shiftlab.store import Store

N_TASKS = 8


def darken(level: int):
    def run(ctx):
        return evaluate_classification(ctx, lambda x, y, i: (x * (1 - level / 10)).clamp(0, 1))

    return run


SUITES.add("test-darken", Suite("test-darken", "test only", lambda ctx: [
    Task(f"darken/{k}", "test-darken", {"level": k}, darken(k)) for k in range(N_TASKS)
]))

if __name__ == "__main__":
    checkpoint, store_path = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    with Store(store_path) as store:
        ctx = make_context(checkpoint, None, store, SuiteOptions(limit=3000, batch_size=500))
        report = run_suites(ctx, ["test-darken"])
    print("RAN", ",".join(report.ran))
    print("SKIPPED", ",".join(report.skipped))
