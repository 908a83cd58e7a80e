"""Terminal rendering: tables that never cut a name, a header or a number.

A table is laid out with Rich when every column fits at its minimum width (the longest word of a
text column, the longest value of a number column): text cells and headers then wrap at spaces.
When even that does not fit the console, each row becomes a short list instead. Piped output (not a
terminal) uses the same layout with plain characters only. Values are formatted by their
:mod:`~shiftlab.core.quantities` (percentages, integers for counts, pass/FAIL for checks).
"""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shiftlab.core.quantities import quantity
from shiftlab.store import TaskRow

GAP = 3  # columns of padding and separator per table column


def min_width(cells: Sequence[str], wraps: bool) -> int:
    """The narrowest a column can be without cutting: its longest word (wrapping) or cell."""
    if wraps:
        return max((len(word) for cell in cells for word in cell.split()), default=1)
    return max((len(cell) for cell in cells), default=1)


def print_table(out: Console, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
                numeric: Sequence[bool] | None = None, caption: str | None = None) -> None:
    """A table if it fits the console without cutting anything, else one short list per row."""
    numeric = list(numeric) if numeric is not None else [False] + [True] * (len(headers) - 1)
    columns = [[h, *(r[i] for r in rows)] for i, h in enumerate(headers)]
    widths = [max(min_width([c[0]], True), min_width(c[1:], not numeric[i])) for i, c in enumerate(columns)]
    if sum(widths) + GAP * len(widths) > out.width:
        out.print(escape(title), highlight=False, soft_wrap=True)
        for row in rows:
            out.print("  " + escape(row[0]) + ": " + "; ".join(f"{escape(h)} {escape(v)}"
                                                               for h, v in zip(headers[1:], row[1:], strict=True) if v),
                      highlight=False, soft_wrap=True)
        if caption:
            out.print(escape(caption), highlight=False, soft_wrap=True)
        return
    out.print(escape(title), style="bold", highlight=False, soft_wrap=True)
    table = Table(caption=escape(caption) if caption else None, caption_justify="left",
                  box=box.SIMPLE_HEAD if out.is_terminal else None, pad_edge=False)
    for header, width, is_number in zip(headers, widths, numeric, strict=True):
        table.add_column(escape(header), justify="right" if is_number else "left", min_width=width,
                         overflow="fold", no_wrap=is_number)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    out.print(table)


def fmt(name: str, value: float | None) -> str:
    return quantity(name).format(value)


def task_table(out: Console, title: str, rows: Sequence[TaskRow]) -> None:
    """One row per task, one column per metric (every metric, grouped ones included), formatted."""
    names: list[str] = []
    for row in rows:
        names += [m for m in row.metrics if m not in names and m != "seconds"]
    cells = [[row.id.task.label(), *(fmt(m, row.metrics.get(m)) if m in row.metrics else "" for m in names)]
             for row in rows]
    print_table(out, title, ["task", *names], cells)


def summary_table(out: Console, title: str, row: TaskRow) -> None:
    """A summary's ``group/item`` metrics pivoted into a grid (the longer side down); the rest below."""
    groups: dict[str, dict[str, float]] = {}
    plain: dict[str, float] = {}
    for name, value in row.metrics.items():
        if name == "seconds":
            continue
        if "/" in name:
            group, item = name.split("/", 1)
            groups.setdefault(group, {})[item] = value
        else:
            plain[name] = value
    label = f"{title}: {row.id.task.label()}"
    totals = "; ".join(f"{k} {fmt(k, v)}" for k, v in plain.items())
    if groups:
        items = list(dict.fromkeys(i for g in groups.values() for i in g))
        groups_down = len(items) <= len(groups)
        across, down = (items, list(groups)) if groups_down else (list(groups), items)
        cells = []
        for key in down:
            values = [(key, groups[key].get(c)) if groups_down else (c, groups[c].get(key)) for c in across]
            cells.append([key, *(fmt(g, v) if v is not None else "" for g, v in values)])
        print_table(out, label, ["", *across], cells)
        if totals:
            out.print(escape(totals), highlight=False, soft_wrap=True)
    elif plain:
        print_table(out, label, ["metric", "value"], [[k, fmt(k, v)] for k, v in plain.items()],
                    numeric=[False, True])


def print_results(out: Console, title: str, rows: Sequence[TaskRow], max_rows: int = 15) -> None:
    """Per suite: its task rows as one table (when few), then its summaries."""
    for suite in dict.fromkeys(r.suite for r in rows):
        mine = [r for r in rows if r.suite == suite]
        tasks = [r for r in mine if not r.id.task.columns().is_summary]
        summaries = [r for r in mine if r.id.task.columns().is_summary]
        if tasks and (len(tasks) <= max_rows or not summaries):
            task_table(out, f"{title}: {suite}", tasks)
        elif tasks:
            out.print(escape(f"{title}: {suite}: {len(tasks)} tasks in the store (all of them with --json)"),
                      highlight=False)
        for row in summaries:
            summary_table(out, title, row)
