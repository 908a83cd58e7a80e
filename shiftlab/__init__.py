"""shiftlab: how does my image classifier behave under distribution shift, and which recipe makes it better?

Public API (imported lazily so ``import shiftlab`` stays cheap)::

    from shiftlab import load_model, load_dataset, evaluate, train, TrainConfig
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {
    "load_model": "shiftlab.models",
    "save_checkpoint": "shiftlab.models",
    "load_dataset": "shiftlab.data",
    "train": "shiftlab.train",
    "TrainConfig": "shiftlab.train",
    "SuiteOptions": "shiftlab.evaluate",
    "Store": "shiftlab.store",
    "UserError": "shiftlab.errors",
}


def evaluate(checkpoint: str, suites: list[str] | None = None, store: str = "results/shiftlab.db",
             dataset: str | None = None, device: str = "cpu", **options: Any) -> Any:
    """Evaluate ``checkpoint`` on ``suites`` (default: clean) into ``store``; returns the run report.

    ``options`` are :class:`shiftlab.evaluate.SuiteOptions` fields (limit, seed, eps, ...).
    """
    from shiftlab.evaluate import SuiteOptions, make_context, run_suites
    from shiftlab.store import Store

    with Store(store) as db:
        ctx = make_context(checkpoint, dataset, db, SuiteOptions(**options), device=device)
        return run_suites(ctx, suites or ["clean"])


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'shiftlab' has no attribute {name!r}")
