"""Suites -> tasks -> resumable runner (design contract 5)."""

from shiftlab.evaluate import suites  # noqa: F401  (registration)
from shiftlab.evaluate.runner import RunReport, make_context, run_suites
from shiftlab.evaluate.tasks import SUITES, EvalContext, Suite, SuiteOptions, Task, TaskResult

__all__ = ["SUITES", "EvalContext", "RunReport", "Suite", "SuiteOptions", "Task", "TaskResult", "make_context", "run_suites"]
