"""The robustness card of one model: every suite's figures, or a note for suites not run."""

from __future__ import annotations

import re
from html import escape

from shiftlab.report import plots
from shiftlab.report.gather import Evaluation, finite
from shiftlab.report.leaderboard import Leaderboard
from shiftlab.report.page import figure, page, run_hint, section, swatch
from shiftlab.report.summaries import (
    attack_points,
    corruption_cells,
    ece_by_severity,
    family_curves,
    metric_grid,
    reliability_by_shift,
    roc_curves,
    sanity_checks,
    sanity_flags,
)


def card_filename(board: Leaderboard, i: int) -> str:
    """A stable file name: fingerprint prefix and dataset key (sorting does not rename cards)."""
    ev = board.evaluations[i]
    return f"model-{ev.fingerprint[:12]}-{re.sub(r'[^A-Za-z0-9]+', '-', ev.dataset).strip('-')}.html"


def _facts(board: Leaderboard, i: int, color: str) -> str:
    ev = board.evaluations[i]
    rows = [("fingerprint", ev.fingerprint), ("architecture", ev.model.arch), ("recipe", ev.model.recipe or "—"),
            ("trained on", ev.model.dataset), ("evaluated on", ev.dataset),
            ("suites in the store", ", ".join(sorted(ev.suites())) or "none")]
    items = "".join(f"<tr><th class=\"text\">{escape(k)}</th><td class=\"text\">{escape(v)}</td></tr>" for k, v in rows)
    cells = "".join(
        f"<tr><th class=\"text\">{escape(c.label)}</th>"
        + (f"<td class=\"missing\" title=\"{escape(board.cells[i][c.key].why)}\">—</td>"
           if board.cells[i][c.key].value is None else f"<td>{escape(c.display(board.cells[i][c.key]))}</td>")
        + "</tr>"
        for c in board.columns
    )
    return f"<p>{swatch(color)}{escape(ev.label)}</p><table class=\"board\">{items}{cells}</table>"


def _corruptions(ev: Evaluation) -> str:
    cells = corruption_cells(ev)
    if not cells:
        return section("Common corruptions", f"<p class=\"note\">{escape(run_hint('corruptions'))}</p>")
    names, severities, grid = metric_grid(cells, "accuracy")
    clean = finite(ev.tasks["clean"].metrics.get("accuracy")) if "clean" in ev.tasks else None
    return section(
        "Common corruptions",
        figure(plots.heatmap(names, severities, grid, "accuracy"),
               "Top-1 accuracy (%) per corruption and severity (Hendrycks & Dietterich 2019, arXiv:1903.12261).",
               "no accuracy values stored"),
        figure(plots.severity_curves(family_curves(cells, "accuracy"), clean, "accuracy"),
               "Accuracy (%) against severity, averaged over the corruptions of each family; severity 0 is clean.",
               "no accuracy values stored"),
    )


def _adversarial(ev: Evaluation) -> str:
    points = attack_points(ev)
    if not points:
        return section("Adversarial robustness", f"<p class=\"note\">{escape(run_hint('adversarial'))}</p>")
    checks = sanity_checks(ev)
    flags = sanity_flags(ev)
    listed = "".join(f"<li class=\"{'ok' if ok else 'flag'}\">{escape(name)}: {'pass' if ok else 'FAIL'}</li>"
                     for name, ok in checks)
    listed += "".join(f"<li class=\"flag\">{escape(f)}</li>" for f in flags if not f.startswith("sanity check failed"))
    checks_html = (f"<div><h3>Sanity checks</h3><ul>{listed}</ul></div>" if listed
                   else "<p class=\"note\">no sanity-check results stored</p>")
    return section(
        "Adversarial robustness",
        figure(plots.attack_curves(points),
               "Robust accuracy (%) against the budget ε per attack; the dashed line is the lowest over attacks, "
               "an upper bound on true robust accuracy (Croce & Hein 2020, arXiv:2003.01690).",
               "robust accuracy is undefined (NaN) for every stored attack"),
        checks_html,
    )


def _calibration(ev: Evaluation) -> str:
    diagrams = reliability_by_shift(ev)
    boxes = ece_by_severity(ev)
    if not diagrams and not boxes:
        return section("Calibration", f"<p class=\"note\">{escape(run_hint('calibration'))}</p>")
    return section(
        "Calibration",
        figure(plots.reliability(diagrams),
               "Reliability diagrams (Guo et al. 2017, arXiv:1706.04599): clean, and pooled over corruptions at "
               "severity 3 and 5; bars on the diagonal are perfectly calibrated.",
               "no reliability data stored"),
        figure(plots.ece_boxes(boxes),
               "ECE (%) over corruptions at each shift intensity (Ovadia et al. 2019, arXiv:1906.02530).",
               "ECE under shift needs the corruptions or calibration suite"),
    )


def _ood(ev: Evaluation) -> str:
    curves = roc_curves(ev)
    if not curves:
        return section("Out-of-distribution detection", f"<p class=\"note\">{escape(run_hint('ood'))}</p>")
    return section(
        "Out-of-distribution detection",
        figure(plots.roc_plots(curves), "ROC curves per OOD set and detector (in-distribution = positive).",
               "no ROC curve data stored"),
    )


def render_card(board: Leaderboard, i: int, color: str) -> str:
    ev = board.evaluations[i]
    body = "".join([
        section("Model", _facts(board, i, color)), _corruptions(ev), _adversarial(ev), _calibration(ev), _ood(ev),
    ])
    return page(f"Robustness card: {ev.label} on {ev.dataset}", body)
