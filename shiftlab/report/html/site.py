"""The static offline site: ``index.html`` (leaderboard), ``compare.html`` and one card per evaluation."""

from __future__ import annotations

from pathlib import Path

from shiftlab.core.registry import Registry
from shiftlab.report.html.card import card_filenames, render_card
from shiftlab.report.html.compare import render_compare
from shiftlab.report.html.index import render_index
from shiftlab.report.leaderboard import Leaderboard
from shiftlab.report.plots.palette import model_styles
from shiftlab.report.views import SuiteView


def write_site(board: Leaderboard, out: Path, views: Registry[SuiteView, None]) -> Path:
    """Write every page under ``out``; returns the leaderboard page."""
    styles = model_styles(ev.fingerprint for ev in board.evaluations)
    cards = card_filenames(board)
    (out / "index.html").write_text(render_index(board, styles, cards), encoding="utf-8")
    (out / "compare.html").write_text(render_compare(board, styles), encoding="utf-8")
    for i, ev in enumerate(board.evaluations):
        (out / cards[i]).write_text(render_card(board, i, styles[ev.fingerprint], views), encoding="utf-8")
    return out / "index.html"
