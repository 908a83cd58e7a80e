"""Pareto fronts of models over safety axes, one front per dataset identity.

A model is dominated when another is at least as good on every axis and strictly better on one
(the usual definition of Pareto optimality); only models with a value on every compared axis take
part. Numbers computed on different data are not comparable, so models evaluated on different
dataset identities are never placed on one front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shiftlab.core.identity import DatasetIdentity
from shiftlab.report.evaluation import Evaluation


def dominates(a: Sequence[float], b: Sequence[float], higher: Sequence[bool]) -> bool:
    """Whether ``a`` is at least as good as ``b`` on every axis and strictly better on one."""
    at_least = all((x >= y) if h else (x <= y) for x, y, h in zip(a, b, higher, strict=True))
    strictly = any((x > y) if h else (x < y) for x, y, h in zip(a, b, higher, strict=True))
    return at_least and strictly


def pareto_front(values: Mapping[str, Sequence[float | None]], higher: Sequence[bool]) -> set[str]:
    """Names of the non-dominated entries among those with every value present."""
    complete = {k: [float(x) for x in v if x is not None] for k, v in values.items() if all(x is not None for x in v)}
    return {k for k, v in complete.items()
            if not any(dominates(w, v, higher) for j, w in complete.items() if j != k)}


def by_dataset(evaluations: Sequence[Evaluation]) -> list[tuple[DatasetIdentity, list[int]]]:
    """Indices of the evaluations per dataset identity, in order of first appearance."""
    groups: dict[DatasetIdentity, list[int]] = {}
    for i, ev in enumerate(evaluations):
        groups.setdefault(ev.dataset, []).append(i)
    return list(groups.items())


def point_labels(evaluations: Sequence[Evaluation], indices: Sequence[int]) -> dict[int, str]:
    """A readable label per evaluation, unique within the group: the model name, plus its fingerprint
    prefix when two models share a name."""
    names = [evaluations[i].label for i in indices]
    return {i: evaluations[i].label + (f" ({evaluations[i].fingerprint[:8]})" if names.count(evaluations[i].label) > 1
                                       else "")
            for i in indices}
