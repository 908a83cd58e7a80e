"""Suites -> tasks -> the resumable runner (design contracts 5-7)."""

from shiftlab.evaluation import suites  # noqa: F401  (registration)
from shiftlab.evaluation.context import EvalContext, RunOptions, Subject, load_subject, make_context
from shiftlab.evaluation.runner import RunReport, run_suites, suite_requests
from shiftlab.evaluation.suite import SUITES, Suite, Task, TaskResult

__all__ = ["SUITES", "EvalContext", "RunOptions", "RunReport", "Subject", "Suite", "Task", "TaskResult", "load_subject", "make_context",
           "run_suites", "suite_requests"]
