"""The adversarial view: robust accuracy per threat (the lowest over the attacks run, an upper bound on
the true robust accuracy; Croce & Hein 2020, arXiv:2003.01690) and the evaluation's sanity checks
(Carlini et al. 2019, arXiv:1902.06705).

Attack points whose identity carries ``budgets`` are the large-eps sanity runs: they appear among
the checks, never as a threat result. A check the run could not test is stored as NaN and shown
as "not applicable", never as a pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from shiftlab.core.identity import AttackPoint, eps_display
from shiftlab.core.quantities import quantity
from shiftlab.report.columns import Column, show
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import figure, note, run_hint, section, subsection, table
from shiftlab.report.plots.curves import BudgetCurve, attack_curves
from shiftlab.report.values import Value, finite, missing, proportion
from shiftlab.report.views import artifacts
from shiftlab.report.views.base import CardContext, SuiteView, metric_cell, register, value_cell
from shiftlab.store import TaskRow

SUITE = "adversarial"
CHECKS = {
    "robust_le_clean": "robust accuracy never exceeds clean accuracy",
    "pre_attack": "the model is deterministic, outputs logits and has finite, non-zero gradients",
    "large_eps_zero": "robust accuracy is ≈ 0 when ε covers the whole image box",
    "monotone_in_eps": "robust accuracy does not increase with ε (needs two or more budgets)",
    "black_box_weaker": "a black-box attack does not beat the white-box ones (needs a black-box attack)",
}


def threat_points(ev: Evaluation) -> list[tuple[AttackPoint, TaskRow]]:
    """Threat results: attack points without budget overrides."""
    return [(p, row) for p, row in ev.cells(AttackPoint) if not p.budgets]


def sanity_runs(ev: Evaluation) -> list[tuple[AttackPoint, TaskRow]]:
    """The large-eps runs (budget overrides) that check the attack can break every image."""
    return [(p, row) for p, row in ev.cells(AttackPoint) if p.budgets]


def same_budget(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def threats(evaluations: Sequence[Evaluation]) -> list[tuple[str, float]]:
    """Every (norm, eps) with a threat result in any evaluation, by norm then eps."""
    seen: list[tuple[str, float]] = []
    for ev in evaluations:
        for p, _ in threat_points(ev):
            if not any(n == p.norm and same_budget(e, p.eps) for n, e in seen):
                seen.append((p.norm, p.eps))
    return sorted(seen)


def lowest_robust_accuracy(ev: Evaluation, norm: str, eps: float) -> Value:
    """The lowest robust accuracy over the attacks run at (norm, eps), with the worst row's n and interval."""
    points = threat_points(ev)
    if not points:
        return missing("adversarial suite not run")
    chosen = [row for p, row in points if p.norm == norm and same_budget(p.eps, eps)]
    scored = [(v, row) for row in chosen if (v := finite(row.metrics.get("robust_accuracy"))) is not None]
    if not scored:
        return missing("no attack at this budget in the store" if not chosen else "robust accuracy undefined (NaN)")
    worst, worst_row = min(scored, key=lambda pair: pair[0])
    sources = tuple(ev.source_of(row, "robust_accuracy") for _, row in scored)
    return proportion(worst, worst_row.metrics.get("n"), sources)


def robust_reader(norm: str, eps: float) -> Callable[[Evaluation], Value]:
    def read(ev: Evaluation) -> Value:
        return lowest_robust_accuracy(ev, norm, eps)

    return read


def adversarial_columns(evaluations: Sequence[Evaluation]) -> list[Column]:
    """One column per threat; the threat most evaluations were attacked at is the comparison axis."""
    found = threats(evaluations)
    coverage = [sum(lowest_robust_accuracy(ev, n, e).value is not None for ev in evaluations) for n, e in found]
    axis = coverage.index(max(coverage)) if coverage else -1
    return [Column(f"robust_{norm}_{eps:g}", f"robust acc {norm} ε={eps_display(eps)}",
                   robust_reader(norm, eps), quantity("robust_accuracy"),
                   f"lowest accuracy over the attacks run at {norm} budget {eps_display(eps)} (Croce & Hein 2020)",
                   axis=(i == axis))
            for i, (norm, eps) in enumerate(found)]


def budget_curves(ev: Evaluation) -> list[BudgetCurve]:
    """Per (attack, norm): robust accuracy at every stored budget, clean accuracy at ε = 0."""
    grouped: dict[tuple[str, str], list[tuple[float, float]]] = {}
    clean: dict[tuple[str, str], float] = {}
    for p, row in threat_points(ev):
        value = finite(row.metrics.get("robust_accuracy"))
        if value is None:
            continue
        grouped.setdefault((p.attack, p.norm), []).append((p.eps, value))
        base = finite(row.metrics.get("clean_accuracy"))
        if base is not None:
            clean.setdefault((p.attack, p.norm), base)
    return [BudgetCurve(attack, norm, tuple(sorted(([(0.0, clean[(attack, norm)])] if (attack, norm) in clean
                                                   else []) + pts)))
            for (attack, norm), pts in sorted(grouped.items())]


def broken_by(row: TaskRow) -> str:
    counts = [(name.removeprefix("broken_by/"), v) for name, v in row.metrics.items()
              if name.startswith("broken_by/") and finite(v) is not None]
    return ", ".join(f"{attack} {v:.0f}" for attack, v in counts) or "—"


def _points_table(ev: Evaluation) -> str:
    rows = [[p.attack, p.norm, eps_display(p.eps),
             value_cell("robust_accuracy", ev.accuracy(row, "robust_accuracy", "")),
             metric_cell("clean_accuracy", row.metrics.get("clean_accuracy")), broken_by(row)]
            for p, row in sorted(threat_points(ev), key=lambda pr: (pr[0].norm, pr[0].eps, pr[0].attack))]
    return table(["attack", "norm", "ε", "robust accuracy ↑", "clean accuracy ↑", "images broken by"], rows,
                 text_columns=3)


def check_items(ev: Evaluation) -> list[str]:
    """One ``<li>`` per stored sanity check (pass / FAIL / not applicable) and per stored flag."""
    summary = next((row for _, row in ev.summaries(SUITE)), None)
    items = []
    for name, value in (summary.metrics.items() if summary else ()):
        if not name.startswith("sanity/"):
            continue
        check = name.removeprefix("sanity/")
        verdict = show(quantity(name), value)
        css = "na" if math.isnan(value) else "ok" if verdict == "pass" else "flag"
        items.append(f"<li class=\"{css}\"><b>{escape(verdict)}</b>: {escape(check)} — "
                     f"{escape(CHECKS.get(check, 'a stored sanity check'))}</li>")
    items += [f"<li class=\"flag\">{escape(flag)}</li>" for flag in artifacts.strings(summary, "flags")]
    return items


def adversarial_section(ev: Evaluation, ctx: CardContext) -> str:
    if not ev.cells(AttackPoint) and not ev.summaries(SUITE):
        return section("Adversarial robustness", note(run_hint(SUITE)), anchor=SUITE)
    items = check_items(ev)
    checks = (f"<ul class=\"checks\">{''.join(items)}</ul>" if items else note("no sanity-check results stored"))
    runs = [[p.label(), value_cell("robust_accuracy", ev.accuracy(row, "robust_accuracy", ""))]
            for p, row in sanity_runs(ev)]
    return section(
        "Adversarial robustness",
        figure(attack_curves(ctx.figures, budget_curves(ev)),
               "Robust accuracy against the budget ε per attack (ε = 0: clean accuracy); the dashed line is the "
               "lowest over attacks, an upper bound on the true robust accuracy (Croce & Hein 2020, "
               "arXiv:2003.01690).", "robust accuracy is undefined (NaN) for every stored attack"),
        subsection("Threat results", _points_table(ev)),
        subsection("Sanity checks", checks,
                   table(["large-ε run", "robust accuracy (should be ≈ 0)"], runs) if runs else ""),
        anchor=SUITE,
    )


VIEW = register(SuiteView(SUITE, "Adversarial robustness", 30, adversarial_columns, adversarial_section))
