"""Robustness report and leaderboard, built from the results store only (design contract 5).

``write_report(store, out, "html")`` writes a static offline site (``index.html`` leaderboard,
``compare.html`` Pareto fronts and radar charts, one robustness card per model); ``"md"`` and
``"json"`` write the leaderboard as ``leaderboard.md`` / ``leaderboard.json``.
"""

from __future__ import annotations

from pathlib import Path

from shiftlab.errors import UserError
from shiftlab.report.gather import Evaluation, gather
from shiftlab.report.leaderboard import Leaderboard, build_leaderboard, sort_leaderboard
from shiftlab.store import Store

FORMATS = ("html", "md", "json")


def load_leaderboard(store: Store, sort: str | None = None) -> Leaderboard:
    """The leaderboard of every model in ``store``, sorted by a column key (default: clean accuracy)."""
    return sort_leaderboard(build_leaderboard(gather(store)), sort)


def write_report(store: Store, out: str | Path, fmt: str = "html", sort: str | None = None) -> Path:
    """Write the report in ``fmt`` under ``out``; returns the main file written."""
    if fmt not in FORMATS:
        raise UserError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a directory for the report")
    out.mkdir(parents=True, exist_ok=True)
    board = load_leaderboard(store, sort)
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
    from shiftlab.report.card import card_filename, render_card
    from shiftlab.report.plots import model_colors
    from shiftlab.report.site import render_compare, render_index

    colors = model_colors([ev.fingerprint for ev in board.evaluations])
    (out / "index.html").write_text(render_index(board, colors), encoding="utf-8")
    (out / "compare.html").write_text(render_compare(board, colors), encoding="utf-8")
    for i, ev in enumerate(board.evaluations):
        (out / card_filename(board, i)).write_text(render_card(board, i, colors[ev.fingerprint]), encoding="utf-8")
    return out / "index.html"


__all__ = ["FORMATS", "Evaluation", "Leaderboard", "load_leaderboard", "write_report"]
