"""Evaluate one model: validate everything, load the model and data, then open the store and run.

Shared by ``shiftlab.evaluate()``, ``shiftlab evaluate`` and the demo. Nothing is created on disk
before the options, the model and the data have been checked. The other models a suite's summary
reads (its prerequisites: the mCE or mFR baseline, the reference models of effective robustness) are
evaluated first, on the same data and seed, so the summary only reads the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from shiftlab.core.errors import UserError
from shiftlab.core.progress import EvalProgress
from shiftlab.evaluation import RunOptions, RunReport, load_subject, make_context, run_suites, suite_requests
from shiftlab.evaluation.cache import EvalCache
from shiftlab.evaluation.suite import SUITES, all_flags, suites_using
from shiftlab.store import Store


def check_options(suites: Sequence[str], options: Mapping[str, Any]) -> None:
    """Unknown option names, and options no chosen suite reads, are user errors."""
    flags = all_flags()
    for name, value in options.items():
        if name not in flags:
            raise UserError(f"unknown evaluation option {name!r}; known: {', '.join(sorted(flags))}")
        users = suites_using(name)
        if value is not None and not set(users) & set(suites):
            raise UserError(f"{flags[name].cli} applies to the {' and '.join(users)} suite(s); "
                            f"add --suite {users[0]}")


def options_for(suites: Sequence[str], options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a protocol (e.g. the zoo's) that the chosen suites read."""
    used = {flag for suite in suites for flag in (f.name for f in SUITES.get(suite).flags)}
    return {k: v for k, v in options.items() if k in used}


@contextmanager
def opened(store: str | Path | Store) -> Iterator[Store]:
    """``store`` as an open Store (opened and closed here when given as a path)."""
    if isinstance(store, Store):
        yield store
        return
    with Store(store) as db:
        yield db


def evaluate_model(model: str | Path, suites: Sequence[str], *, store: str | Path | Store, options: Mapping[str, Any],
                   dataset: str | None = None, data_root: str | Path | None = None, seed: int = 0,
                   limit: int | None = None, batch_size: int = 256, device: str = "auto",
                   progress: EvalProgress | None = None, cache: EvalCache | None = None, download: bool = False,
                   pretrained: str | None = None, amp: str | None = None, channels_last: bool = False) -> RunReport:
    """Run ``suites`` on ``model`` into ``store`` (see :func:`shiftlab.evaluate`)."""
    run = RunOptions(seed=seed, limit=limit, batch_size=batch_size, device=device, amp=amp,
                     channels_last=channels_last)
    check_options(suites, options)
    requests = suite_requests(suites, options)
    subject = load_subject(model, run, dataset=dataset, data_root=data_root, download=download, pretrained=pretrained)
    needs = [need for suite, opts in requests
             for need in (suite.prerequisites(opts, subject.data_name) if suite.prerequisites else ())]
    cache = cache if cache is not None else EvalCache.create()
    with opened(store) as db:
        for need in needs:
            other = load_subject(need.checkpoint, run, dataset=subject.data_name, data_root=data_root)
            run_suites(make_context(other, db, progress=progress, cache=cache),
                       suite_requests(list(need.suites), need.options))
        return run_suites(make_context(subject, db, progress=progress, cache=cache), requests)
