"""The leaderboard page (sortable, filterable) and the comparison page (Pareto fronts, radar charts)."""

from __future__ import annotations

from html import escape
from itertools import combinations

from shiftlab.report import plots
from shiftlab.report.card import card_filename
from shiftlab.report.compare import axis_values, pareto_front, row_label, safety_axes
from shiftlab.report.leaderboard import TEXT_COLUMNS, Leaderboard
from shiftlab.report.page import figure, page, section, swatch


def render_index(board: Leaderboard, colors: dict[str, str]) -> str:
    if not board.evaluations:
        body = ("<p class=\"note\">The store holds no evaluated model yet. Run "
                "<code>shiftlab evaluate --model CHECKPOINT --suite clean</code> and build the report again.</p>")
        return page("shiftlab leaderboard", body, script=True)
    head = "".join(f"<th class=\"text\" data-key=\"{t.key}\" data-type=\"text\" title=\"{escape(t.help or t.label)}\">"
                   f"{escape(t.label)}</th>" for t in TEXT_COLUMNS)
    head += "".join(
        f"<th data-key=\"{c.key}\" data-type=\"number\" "
        f"data-better=\"{'lower' if c.higher_is_better is False else 'higher'}\" title=\"{escape(c.help)}\">"
        f"{escape(c.label + c.arrow)}</th>"
        for c in board.columns
    )
    rows = []
    for i, ev in enumerate(board.evaluations):
        text = board.text(i)
        cells = []
        for t in TEXT_COLUMNS:
            shown = escape(text[t.key])
            if t.key == "model":
                shown = f"{swatch(colors[ev.fingerprint])}<a href=\"{card_filename(board, i)}\">{shown}</a>"
            cells.append(f"<td class=\"text\" data-value=\"{escape(text[t.key])}\">{shown}</td>")
        for c in board.columns:
            v = board.cells[i][c.key]
            if v.value is None:
                cells.append(f"<td class=\"missing\" data-value=\"\" title=\"{escape(v.why)}\">—</td>")
            else:
                cells.append(f"<td data-value=\"{v.value!r}\">{escape(c.display(v))}</td>")
        rows.append(f"<tr data-fingerprint=\"{ev.fingerprint}\">{''.join(cells)}</tr>")
    body = (
        "<p>One row per model and evaluation dataset; accuracies in %. Click a column header to sort, hover a "
        "header for its definition and a — for why the value is missing.</p>"
        "<input id=\"filter\" type=\"search\" placeholder=\"filter rows (model, recipe, …)\">"
        f"<div class=\"scroll\"><table id=\"leaderboard\" class=\"board\"><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )
    return page("shiftlab leaderboard", body, script=True)


def render_compare(board: Leaderboard, colors: dict[str, str]) -> str:
    axes = safety_axes(board)
    values = axis_values(board, axes)
    labels = [row_label(board, i) for i in range(len(board.evaluations))]
    color_of = {labels[i]: colors[ev.fingerprint] for i, ev in enumerate(board.evaluations)}
    fronts = []
    paired = [i for i, a in enumerate(axes) if a.key != "ood_auroc"]  # the four safety axes; OOD is on the radar
    for a, b in combinations(paired, 2):
        pts = [(lab, color_of[lab], 100 * x, 100 * y) for lab, v in values.items()
               if (x := v[a]) is not None and (y := v[b]) is not None]
        if len(pts) < 1:
            continue
        front = pareto_front({lab: [values[lab][a], values[lab][b]] for lab, *_ in pts},
                             [axes[a].higher_is_better, axes[b].higher_is_better])
        fronts.append(figure(plots.pareto(pts, front, axes[a].label, axes[b].label,
                                          (axes[a].higher_is_better, axes[b].higher_is_better)),
                             f"{axes[a].label} vs {axes[b].label}: ringed models are non-dominated.", ""))
    overall = pareto_front(values, [a.higher_is_better for a in axes])
    complete = [lab for lab, v in values.items() if all(x is not None for x in v)]
    if complete:
        summary = ("<p>Non-dominated on all axes (" + escape(", ".join(a.label for a in axes)) + "): <b>"
                   + escape(", ".join(sorted(overall)) or "none") + "</b>.</p>")
    else:
        summary = ("<p class=\"note\">No model has a value on every axis; fronts are shown per pair of axes "
                   "for the models that have both.</p>")
    pair_html = "".join(fronts) or "<p class=\"note\">No two safety axes have values for any model yet.</p>"
    radar_axes = axes
    radars = []
    for i, ev in enumerate(board.evaluations):
        vals = [board.cells[i][a.key].value for a in radar_axes]
        vals = [None if v is None else (1 - v if not a.higher_is_better else v) for v, a in zip(vals, radar_axes, strict=True)]
        names = [("1 − " + a.label) if not a.higher_is_better else a.label for a in radar_axes]
        radars.append(figure(plots.radar([n.replace(" (%)", "") for n in names], vals, colors[ev.fingerprint], labels[i]),
                             f"{labels[i]}: scores in %, higher is better on every spoke.",
                             f"{labels[i]}: no safety axis has a value yet."))
    legend = "".join(f"<li>{swatch(color_of[lab])}{escape(lab)}</li>" for lab in labels)
    body = (section("Models", f"<ul>{legend}</ul>" if legend else "<p class=\"note\">no evaluated model yet</p>")
            + section("Pareto fronts across safety axes", summary, pair_html)
            + section("Radar chart per model", "".join(radars)))
    return page("shiftlab model comparison", body)
