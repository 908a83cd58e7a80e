"""Per-suite views of an :class:`Evaluation` that the leaderboard and the plots share.

Each function reads stored task rows only and skips rows whose keys or values do not have the
expected shape, so a suite that is missing, partial or has extra keys never breaks the report.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from shiftlab.report.gather import Evaluation, Value, finite, parse_severity, split_key
from shiftlab.store import TaskRow


@dataclass(frozen=True)
class ShiftCell:
    """One corruption at one severity."""

    corruption: str
    family: str
    severity: int
    row: TaskRow


def corruption_cells(ev: Evaluation, suite: str = "corruptions") -> list[ShiftCell]:
    """Rows keyed ``<suite>/<corruption>/<severity>`` (the corruptions and calibration suites)."""
    families = family_table(ev)
    cells = []
    for row in ev.rows(suite):
        parts = split_key(row.id.task_key)
        if len(parts) != 3:
            continue
        severity = parse_severity(parts[2])
        if severity is None:
            continue
        name = str(row.params.get("corruption", parts[1]))
        family = str(row.params.get("family") or families.get(name, "other"))
        cells.append(ShiftCell(name, family, severity, row))
    return cells


def family_table(ev: Evaluation) -> dict[str, str]:
    """corruption name -> family, from the corruptions rows' params or the summary's per_corruption artifact."""
    table: dict[str, str] = {}
    summary = ev.summary("corruptions")
    per = summary.artifacts.get("per_corruption") if summary else None
    if isinstance(per, dict):
        for name, info in per.items():
            if isinstance(info, dict) and info.get("family"):
                table[str(name)] = str(info["family"])
    for row in ev.rows("corruptions"):
        if "corruption" in row.params and row.params.get("family"):
            table[str(row.params["corruption"])] = str(row.params["family"])
    return table


def metric_grid(cells: list[ShiftCell], metric: str) -> tuple[list[str], list[int], list[list[float | None]]]:
    """(corruption names, severities, values[corruption][severity]) for a heatmap."""
    names = sorted({c.corruption for c in cells}, key=lambda n: (next(c.family for c in cells if c.corruption == n), n))
    severities = sorted({c.severity for c in cells})
    lookup = {(c.corruption, c.severity): finite(c.row.metrics.get(metric)) for c in cells}
    return names, severities, [[lookup.get((n, s)) for s in severities] for n in names]


def family_curves(cells: list[ShiftCell], metric: str) -> dict[str, list[tuple[int, float]]]:
    """family -> [(severity, mean metric over the family's corruptions)]."""
    buckets: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        v = finite(c.row.metrics.get(metric))
        if v is not None:
            buckets[c.family][c.severity].append(v)
    return {f: sorted((s, sum(vs) / len(vs)) for s, vs in by_sev.items()) for f, by_sev in sorted(buckets.items())}


@dataclass(frozen=True)
class AttackPoint:
    attack: str
    norm: str
    eps: float
    eps_display: str
    robust_accuracy: float | None
    row: TaskRow


def attack_points(ev: Evaluation) -> list[AttackPoint]:
    """Rows keyed ``adversarial/<attack>/<norm>/<eps>``."""
    points = []
    for row in ev.rows("adversarial"):
        parts = split_key(row.id.task_key)
        if len(parts) != 4 or row.params.get("large_eps_check") is True:  # sanity runs are not threat results
            continue
        eps = finite(row.params.get("eps"))
        if eps is None:
            try:
                eps = float(parts[3])
            except ValueError:
                continue
        display = str(row.params.get("eps_display") or f"{eps:g}")
        points.append(AttackPoint(str(row.params.get("attack", parts[1])), str(row.params.get("norm", parts[2])),
                                  eps, display, finite(row.metrics.get("robust_accuracy")), row))
    return points


def threat_label(norm: str, eps_display: str) -> str:
    return f"{norm} ε={eps_display}"


def worst_case(ev: Evaluation, points: list[AttackPoint], norm: str, eps: float) -> Value:
    """Robust accuracy at (norm, eps): the lowest over the attacks run (an upper bound on the true value)."""
    chosen = [p for p in points if p.norm == norm and abs(p.eps - eps) <= 1e-9 * max(1.0, eps)]
    scored = [p for p in chosen if p.robust_accuracy is not None]
    if not scored:
        why = "no attack at this budget in the store" if not chosen else "robust accuracy undefined (NaN)"
        return Value(None, (), why)
    worst = min(scored, key=lambda p: p.robust_accuracy or 0.0)
    return Value(worst.robust_accuracy, tuple(ev.source(p.row, "robust_accuracy") for p in scored))


def threats(evaluations: list[Evaluation]) -> list[tuple[str, float, str]]:
    """Every (norm, eps, display) seen across evaluations, sorted by norm then eps."""
    seen: dict[tuple[str, float], str] = {}
    for ev in evaluations:
        for p in attack_points(ev):
            seen.setdefault((p.norm, round(p.eps, 12)), p.eps_display)
    return [(n, e, d) for (n, e), d in sorted(seen.items())]


def sanity_flags(ev: Evaluation) -> list[str]:
    """Human-readable sanity findings: failed checks and stored flags (Croce & Hein 2020 style checks)."""
    out: list[str] = []
    summary = ev.summary("adversarial")
    if summary is not None:
        for name, value in sorted(summary.metrics.items()):
            if name.startswith("sanity/") and finite(value) is not None and float(value) < 0.5:
                out.append(f"sanity check failed: {name.split('/', 1)[1]}")
        flags = summary.artifacts.get("flags")
        if isinstance(flags, list):
            out.extend(str(f) for f in flags)
    return out


def sanity_checks(ev: Evaluation) -> list[tuple[str, bool]]:
    """(check name, passed) from the adversarial summary's ``sanity/<check>`` metrics."""
    summary = ev.summary("adversarial")
    if summary is None:
        return []
    return [(k.split("/", 1)[1], float(v) >= 0.5) for k, v in sorted(summary.metrics.items())
            if k.startswith("sanity/") and finite(v) is not None]


def pooled_reliability(rows: list[TaskRow], artifact: str = "reliability") -> dict[str, list[float]] | None:
    """Pool reliability bins over several rows (weighting each bin by its count)."""
    count: list[float] = []
    conf: list[float] = []
    acc: list[float] = []
    upper: list[float] = []
    for row in rows:
        rel = row.artifacts.get(artifact)
        if not isinstance(rel, dict):
            continue
        try:
            c, f, a, u = ([float(x) for x in rel[k]] for k in ("count", "confidence", "accuracy", "bin_upper"))
        except (KeyError, TypeError, ValueError):
            continue
        if not count:
            count, conf, acc, upper = [0.0] * len(c), [0.0] * len(c), [0.0] * len(c), u
        if len(c) != len(count):
            continue
        for i, n in enumerate(c):
            count[i] += n
            conf[i] += f[i] * n
            acc[i] += a[i] * n
    if not count or sum(count) == 0:
        return None
    return {"bin_upper": upper, "count": count,
            "confidence": [conf[i] / n if n else 0.0 for i, n in enumerate(count)],
            "accuracy": [acc[i] / n if n else 0.0 for i, n in enumerate(count)]}


def reliability_by_shift(ev: Evaluation) -> dict[str, dict[str, list[float]]]:
    """Reliability data for clean, severity 3 and severity 5 (pooled over corruptions)."""
    out: dict[str, dict[str, list[float]]] = {}
    clean = [r for r in (ev.tasks.get("calibration/clean"), ev.tasks.get("clean")) if r is not None]
    pooled = pooled_reliability(clean[:1])
    if pooled:
        out["clean"] = pooled
    cells = corruption_cells(ev, "calibration") or corruption_cells(ev, "corruptions")
    for severity in (3, 5):
        pooled = pooled_reliability([c.row for c in cells if c.severity == severity])
        if pooled:
            out[f"severity {severity}"] = pooled
    return out


def ece_by_severity(ev: Evaluation) -> dict[int, list[float]]:
    """severity -> ECE of every corruption at that severity (0 = clean), as in Ovadia et al. (2019)."""
    cells = corruption_cells(ev, "calibration") or corruption_cells(ev, "corruptions")
    out: dict[int, list[float]] = defaultdict(list)
    clean = ev.tasks.get("calibration/clean") or ev.tasks.get("clean")
    if clean is not None and finite(clean.metrics.get("ece")) is not None:
        out[0].append(float(clean.metrics["ece"]))
    for c in cells:
        v = finite(c.row.metrics.get("ece"))
        if v is not None:
            out[c.severity].append(v)
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class RocCurve:
    ood_set: str
    detector: str
    fpr: list[float]
    tpr: list[float]
    auroc: float | None


def roc_curves(ev: Evaluation) -> list[RocCurve]:
    """Rows keyed ``ood/<set>/<detector>`` with a ``roc`` artifact."""
    curves = []
    for row in ev.rows("ood"):
        parts = split_key(row.id.task_key)
        if len(parts) != 3:
            continue
        roc: Any = row.artifacts.get("roc")
        fpr: list[float] = []
        tpr: list[float] = []
        if isinstance(roc, dict):
            try:
                fpr = [float(x) for x in roc.get("fpr", [])]
                tpr = [float(x) for x in roc.get("tpr", [])]
            except (TypeError, ValueError):
                fpr, tpr = [], []
        if len(fpr) != len(tpr):
            fpr, tpr = [], []
        curves.append(RocCurve(parts[1], parts[2], fpr, tpr, finite(row.metrics.get("auroc"))))
    return curves
