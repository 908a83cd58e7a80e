"""The comparison page: Pareto fronts over the views' safety axes, one set per dataset identity, and a
radar chart per evaluation.

Each safety axis is plotted against the first (clean accuracy: the trade-off people ask about);
the models non-dominated on all axes together are named above the plots.

The axes are the leaderboard columns the views mark as axes (clean accuracy, corruption accuracy,
the most covered adversarial budget, ECE, OOD AUROC, ...). Models evaluated on different data
never share a plot or a front.
"""

from __future__ import annotations

from html import escape

from shiftlab.report.columns import Column
from shiftlab.report.html.blocks import figure, note, page, section, subsection, swatch
from shiftlab.report.leaderboard import Leaderboard
from shiftlab.report.pareto import by_dataset, pareto_front, point_labels
from shiftlab.report.plots.compare import ParetoPoint, pareto_scatter, radar
from shiftlab.report.plots.heatmap import percent_scale
from shiftlab.report.plots.palette import ModelStyle
from shiftlab.report.plots.svg import FigureSet


def _axis_name(column: Column) -> str:
    return column.label + (" (%)" if percent_scale(column.quantity) == 100.0 else "")


def _higher(column: Column) -> bool:
    return column.quantity.higher_is_better is not False


def _group(board: Leaderboard, indices: list[int], styles: dict[str, ModelStyle], figures: FigureSet) -> str:
    axes = board.axes()
    labels = point_labels(board.evaluations, indices)
    values = {labels[i]: [board.cells[i][a.key].value for a in axes] for i in indices}
    plots = []
    for a, b in [(0, k) for k in range(1, len(axes))]:
        xs, ys = percent_scale(axes[a].quantity), percent_scale(axes[b].quantity)
        points = [ParetoPoint(labels[i], styles[board.evaluations[i].fingerprint], xs * x, ys * y)
                  for i in indices
                  if (x := board.cells[i][axes[a].key].value) is not None
                  and (y := board.cells[i][axes[b].key].value) is not None]
        if not points:
            continue
        front = pareto_front({p.label: values[p.label][a:a + 1] + values[p.label][b:b + 1] for p in points},
                             [_higher(axes[a]), _higher(axes[b])])
        plots.append(figure(pareto_scatter(figures, points, front, _axis_name(axes[a]), _axis_name(axes[b]),
                                           (_higher(axes[a]), _higher(axes[b]))),
                            f"{axes[a].label} vs {axes[b].label}: ringed and labelled models are non-dominated; "
                            "hover any marker for its model.", ""))
    # the overall front: on every axis at least two models have, among the models that have all of them
    used = [k for k in range(len(axes)) if sum(v[k] is not None for v in values.values()) >= 2]
    complete = {label: [v[k] for k in used] for label, v in values.items() if all(v[k] is not None for k in used)}
    if used and complete:
        overall = pareto_front(complete, [_higher(axes[k]) for k in used])
        unranked = sorted(set(values) - set(complete))
        summary = (f"<p>Non-dominated on the axes at least two models have "
                   f"({escape(', '.join(axes[k].label for k in used))}): <b>"
                   f"{escape(', '.join(sorted(overall)) or 'none')}</b>."
                   + (f" Not ranked, for lack of some of these axes: {escape(', '.join(unranked))}." if unranked
                      else "") + "</p>")
    else:
        summary = note("No model has a value on every axis; fronts are shown per pair of axes for the models "
                       "that have both.")
    return summary + ("".join(plots) or note("No two safety axes have values for any model on this data yet."))


def _radars(board: Leaderboard, styles: dict[str, ModelStyle], figures: FigureSet) -> str:
    axes = [a for a in board.axes() if percent_scale(a.quantity) == 100.0]
    spokes = [a.label if _higher(a) else f"1 − {a.label}" for a in axes]
    out = []
    for i, ev in enumerate(board.evaluations):
        scores = [None if (v := board.cells[i][a.key].value) is None else (v if _higher(a) else 1 - v) for a in axes]
        title = f"{ev.label} on {ev.dataset_label}"
        out.append(figure(radar(figures, spokes, scores, styles[ev.fingerprint], title),
                          f"{title}: scores in %, higher is better on every spoke.",
                          f"{title}: fewer than three safety axes have a value."))
    return "".join(out)


def render_compare(board: Leaderboard, styles: dict[str, ModelStyle]) -> str:
    figures = FigureSet("f")
    legend = "".join(f"<li>{swatch(styles[ev.fingerprint].color)}{escape(ev.label)} — {escape(ev.dataset_label)}</li>"
                     for ev in board.evaluations)
    groups = [subsection(f"On {board.evaluations[indices[0]].dataset_label}",
                         _group(board, indices, styles, figures))
              for _, indices in by_dataset(board.evaluations)]
    body = (section("Models", f"<ul>{legend}</ul>" if legend else note("no evaluated model yet"))
            + section("Pareto fronts across safety axes, per evaluation dataset",
                      note("Numbers computed on different data are not comparable: each dataset identity has its "
                           "own fronts.") if len(groups) > 1 else "", *groups)
            + section("Radar chart per model", _radars(board, styles, figures)))
    return page("shiftlab model comparison", body)
