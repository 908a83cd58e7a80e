"""The leaderboard page: sortable (click a header), filterable, every cell explained on hover.

A number's tooltip gives its 95 % interval and n where it is one proportion, and the rows it came
from; a "—" says why it is missing; the dataset cell says where the data was read from.
"""

from __future__ import annotations

from html import escape

from shiftlab.report.html.blocks import page
from shiftlab.report.leaderboard import Leaderboard
from shiftlab.report.plots.palette import ModelStyle

EMPTY = ("<p class=\"note\">The store holds no evaluated model yet. Run "
         "<code>shiftlab evaluate --model CHECKPOINT --suite clean</code> and build the report again.</p>")


def _head(board: Leaderboard) -> str:
    head = "".join(f"<th class=\"text\" data-key=\"{t.key}\" data-type=\"text\" title=\"{escape(t.help or t.label)}\">"
                   f"{escape(t.label)}</th>" for t in board.text_columns)
    return head + "".join(
        f"<th data-key=\"{escape(c.key)}\" data-type=\"number\" "
        f"data-better=\"{'lower' if c.quantity.higher_is_better is False else 'higher'}\" title=\"{escape(c.help)}\">"
        f"{escape(c.header)}</th>"
        for c in board.columns
    )


def _row(board: Leaderboard, i: int, style: ModelStyle, card: str) -> str:
    ev = board.evaluations[i]
    text = board.text(i)
    cells = []
    for t in board.text_columns:
        shown = escape(text[t.key])
        if t.key == "model":
            shown = (f"<span class=\"swatch\" style=\"background:{style.color}\"></span>"
                     f"<a href=\"{escape(card)}\">{shown}</a>")
        title = f" title=\"{escape(t.hover(ev))}\"" if t.hover else ""
        cells.append(f"<td class=\"text\" data-value=\"{escape(text[t.key])}\"{title}>{shown}</td>")
    for c in board.columns:
        value = board.cells[i][c.key]
        if value.value is None:
            cells.append(f"<td class=\"missing\" data-value=\"\" title=\"{escape(value.why)}\">—</td>")
        else:
            cells.append(f"<td data-value=\"{value.value!r}\" title=\"{escape(c.hover(value))}\">"
                         f"{escape(c.display(value))}</td>")
    return f"<tr data-fingerprint=\"{ev.fingerprint}\">{''.join(cells)}</tr>"


def render_index(board: Leaderboard, styles: dict[str, ModelStyle], cards: list[str]) -> str:
    """The leaderboard page; ``cards`` are the card file names in board order."""
    if not board.evaluations:
        return page("shiftlab leaderboard", EMPTY, script=True)
    rows = "".join(_row(board, i, styles[ev.fingerprint], cards[i]) for i, ev in enumerate(board.evaluations))
    body = (
        "<p>One row per model and evaluation data (name[:limit] and the first 12 hex digits of the data's content "
        "fingerprint). Click a column header to sort, hover a number for its 95% interval and n, a — for why it "
        "is missing, a dataset for where it was read from.</p>"
        "<input id=\"filter\" type=\"search\" placeholder=\"filter rows (model, recipe, dataset, …)\">"
        f"<div class=\"scroll\"><table id=\"leaderboard\" class=\"board\"><thead><tr>{_head(board)}</tr></thead>"
        f"<tbody>{rows}</tbody></table></div>"
    )
    return page("shiftlab leaderboard", body, script=True)
