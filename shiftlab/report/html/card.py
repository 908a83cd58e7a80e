"""The robustness card of one evaluation: the facts (model, data and its provenance, the leaderboard
numbers with their intervals) and one section per suite view, plus a plain listing of any suite the
report has no view for."""

from __future__ import annotations

import re
from html import escape

from shiftlab.core.registry import Registry
from shiftlab.report.columns import interval_text
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.html.blocks import cell, page, section, swatch, table
from shiftlab.report.leaderboard import Leaderboard
from shiftlab.report.plots.palette import ModelStyle
from shiftlab.report.plots.svg import FigureSet
from shiftlab.report.views import CardContext, SuiteView, ordered
from shiftlab.report.views.generic import generic_section

UNKNOWN_CONTENT = "unknown: computed before content fingerprints were stored (a migrated row)"


def card_filenames(board: Leaderboard) -> list[str]:
    """A stable, unique file name per evaluation: fingerprint prefix, dataset name, split, limit and content
    prefix (sorting the leaderboard never renames a card)."""
    names: list[str] = []
    for ev in board.evaluations:
        d = ev.dataset
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{d.name}-{d.split}-{'all' if d.limit is None else d.limit}")
        base = f"model-{ev.fingerprint[:12]}-{slug.strip('-')}-{d.short_content}"
        name, k = f"{base}.html", 1
        while name in names:
            k += 1
            name = f"{base}-{k}.html"
        names.append(name)
    return names


def _facts(board: Leaderboard, i: int, style: ModelStyle) -> str:
    ev = board.evaluations[i]
    d = ev.dataset
    facts = [("fingerprint", ev.fingerprint), ("architecture", ev.model.arch), ("recipe", ev.model.recipe or "—"),
             ("trained on", ev.model.dataset), ("evaluated on", ev.dataset_label),
             ("data content (sha256)", d.content or UNKNOWN_CONTENT),
             ("images", f"{d.size} of split {d.split}" + ("" if d.limit is None else f" (limit {d.limit})")),
             ("data source", ev.source), ("suites in the store", ", ".join(ev.suites()) or "none")]
    rows = [[key, value] for key, value in facts]
    for column in board.columns:
        value = board.cells[i][column.key]
        extra = interval_text(value) if value.value is not None else ""
        shown = column.display(value) + (f" ({extra})" if extra else "")
        rows.append([column.header, cell(shown, title=value.why if value.value is None else column.help)])
    return f"<p>{swatch(style.color)}{escape(ev.label)}</p>" + table(["", ""], rows, text_columns=2)


def render_card(board: Leaderboard, i: int, style: ModelStyle, views: Registry[SuiteView, None]) -> str:
    """The card page of ``board.evaluations[i]``."""
    ev: Evaluation = board.evaluations[i]
    ctx = CardContext(FigureSet("f"), style)
    known = set(views.names())
    body = "".join([
        section("Model and data", _facts(board, i, style), anchor="facts"),
        *(view.section(ev, ctx) for view in ordered(views)),
        *(generic_section(ev, suite) for suite in ev.suites() if suite not in known),
    ])
    return page(f"Robustness card: {ev.label} on {ev.dataset_label}", body)
