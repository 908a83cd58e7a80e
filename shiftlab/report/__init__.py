"""Robustness report and leaderboard, built from the results store only (design contract 5).

``write_report(store, out, "html")`` writes a static offline site (``index.html`` leaderboard,
``compare.html`` Pareto fronts and radar charts, one robustness card per model and dataset);
``"md"`` and ``"json"`` write the leaderboard as ``leaderboard.md`` / ``leaderboard.json``.
``leaderboard_table`` gives the leaderboard as plain strings for a terminal.

The report imports the store, ``shiftlab.core`` and its own modules only. Each suite's part of it
is a view in ``report/views/`` (its leaderboard columns and card section).
"""

from __future__ import annotations

from pathlib import Path

from shiftlab.core.errors import UserError
from shiftlab.report.evaluation import Evaluation, gather
from shiftlab.report.leaderboard import Leaderboard, build_leaderboard, leaderboard_table, sort_leaderboard
from shiftlab.report.views import VIEWS
from shiftlab.store import Store

FORMATS = ("html", "md", "json")


def load_leaderboard(store: Store, sort: str | None = None) -> Leaderboard:
    """The leaderboard of every evaluation in ``store``, sorted by a column key (default: clean accuracy)."""
    return sort_leaderboard(build_leaderboard(gather(store), VIEWS), sort)


def write_report(store: Store, out: str | Path, fmt: str = "html", sort: str | None = None) -> Path:
    """Write the report in ``fmt`` under the directory ``out``; returns the main file written."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a directory for the report")
    board = load_leaderboard(store, sort)
    out.mkdir(parents=True, exist_ok=True)
    if fmt == "md":
        from shiftlab.report.exports import to_markdown

        path = out / "leaderboard.md"
        path.write_text(to_markdown(board), encoding="utf-8")
        return path
    if fmt == "json":
        from shiftlab.report.exports import dumps

        path = out / "leaderboard.json"
        path.write_text(dumps(board), encoding="utf-8")
        return path
    from shiftlab.report.html.site import write_site

    return write_site(board, out, VIEWS)


__all__ = ["FORMATS", "Evaluation", "Leaderboard", "leaderboard_table", "load_leaderboard", "write_report"]
