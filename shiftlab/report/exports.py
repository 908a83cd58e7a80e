"""Leaderboard exports: a Markdown table for papers and READMEs, JSON with every number's
provenance (model fingerprint, task key, seed, shiftlab version), and a Rich table for the terminal."""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table

from shiftlab import __version__
from shiftlab.report.leaderboard import TEXT_COLUMNS, Leaderboard, cell_json


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(board: Leaderboard) -> str:
    """A GitHub-flavoured Markdown table; missing values are '—' and explained below the table."""
    headers = [c.label for c in TEXT_COLUMNS] + [c.label + c.arrow for c in board.columns]
    lines = ["| " + " | ".join(_md_escape(h) for h in headers) + " |",
             "|" + "|".join([":---"] * len(TEXT_COLUMNS) + ["---:"] * len(board.columns)) + "|"]
    reasons: dict[str, int] = {}
    for i in range(len(board.evaluations)):
        text = board.text(i)
        cells = [_md_escape(text[c.key]) for c in TEXT_COLUMNS]
        for c in board.columns:
            v = board.cells[i][c.key]
            if v.value is None:
                n = reasons.setdefault(v.why, len(reasons) + 1)
                cells.append(f"—<sup>{n}</sup>")
            else:
                cells.append(c.display(v))
        lines.append("| " + " | ".join(cells) + " |")
    if not board.evaluations:
        lines.append("\n_The store holds no evaluated model yet._")
    lines.append("")
    lines.append("Accuracies, ECE, mCE and AUROC in %. " + " ".join(f"<sup>{n}</sup> {_md_escape(why)}."
                                                                   for why, n in reasons.items()))
    return "\n".join(lines).rstrip() + "\n"


def to_json(board: Leaderboard) -> dict[str, Any]:
    """Every leaderboard number with its provenance, plus every stored metric of every task used."""
    rows = []
    for i, ev in enumerate(board.evaluations):
        rows.append({
            "model": {"fingerprint": ev.fingerprint, "name": ev.label, "arch": ev.model.arch,
                      "recipe": ev.model.recipe, "num_params": ev.model.num_params, "trained_on": ev.model.dataset},
            "dataset": ev.dataset,
            "cells": {c.key: cell_json(c, board.cells[i][c.key]) for c in board.columns},
            "tasks": [
                {"task_key": r.id.task_key, "suite": r.suite, "seed": r.id.seed, "params": r.params,
                 "metrics": {k: (v if v == v else None) for k, v in r.metrics.items()},
                 "shiftlab_version": r.shiftlab_version, "run_id": r.run_id, "started_at": r.started_at}
                for r in ev.tasks.values()
            ],
        })
    return {
        "shiftlab_version": __version__,
        "columns": [{"key": c.key, "label": c.label} for c in TEXT_COLUMNS]
        + [{"key": c.key, "label": c.label, "higher_is_better": c.higher_is_better, "help": c.help}
           for c in board.columns],
        "rows": rows,
    }


def dumps(board: Leaderboard) -> str:
    return json.dumps(to_json(board), indent=2, allow_nan=False) + "\n"


def rich_table(board: Leaderboard, title: str = "shiftlab leaderboard") -> Table:
    table = Table(title=title, caption="headers are --sort keys; accuracies, ECE, mCE and AUROC in %")
    for t in TEXT_COLUMNS:
        table.add_column(t.key)
    for c in board.columns:
        table.add_column(c.key + c.arrow, justify="right")
    for i in range(len(board.evaluations)):
        text = board.text(i)
        table.add_row(*[text[c.key] for c in TEXT_COLUMNS],
                      *[c.display(board.cells[i][c.key]) for c in board.columns])
    return table
