"""Leaderboard exports: a Markdown table for papers and READMEs, and JSON with every number's
provenance (model fingerprint, dataset identity, task identity, metric, seed, shiftlab version)."""

from __future__ import annotations

import json
import math
from typing import Any

from shiftlab.core.version import __version__
from shiftlab.report.columns import Column
from shiftlab.report.evaluation import Evaluation
from shiftlab.report.leaderboard import TEXT_COLUMNS, Leaderboard
from shiftlab.report.values import Value


def _md_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def to_markdown(board: Leaderboard) -> str:
    """A GitHub-flavoured Markdown table; missing values are "—" with a numbered reason below the table."""
    headers = [c.label for c in TEXT_COLUMNS] + [c.header for c in board.columns]
    lines = ["| " + " | ".join(_md_escape(h) for h in headers) + " |",
             "|" + "|".join([":---"] * len(TEXT_COLUMNS) + ["---:"] * len(board.columns)) + "|"]
    reasons: dict[str, int] = {}
    for i in range(len(board.evaluations)):
        text = board.text(i)
        cells = [_md_escape(text[c.key]) for c in TEXT_COLUMNS]
        for column in board.columns:
            value = board.cells[i][column.key]
            if value.value is None:
                cells.append(f"—<sup>{reasons.setdefault(value.why, len(reasons) + 1)}</sup>")
            else:
                cells.append(_md_escape(column.display(value)))
        lines.append("| " + " | ".join(cells) + " |")
    if not board.evaluations:
        lines.append("\n_The store holds no evaluated model yet._")
    lines.append("")
    lines.append("Dataset: name[:limit] (first 12 hex digits of its content fingerprint). "
                 + " ".join(f"<sup>{n}</sup> {_md_escape(why)}." for why, n in reasons.items()))
    return "\n".join(lines).rstrip() + "\n"


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def cell_json(column: Column, value: Value) -> dict[str, Any]:
    return {"value": value.value, "display": column.display(value), "unit": column.quantity.unit,
            "higher_is_better": column.quantity.higher_is_better, "n": value.n,
            "interval_95": list(value.interval) if value.interval else None,
            "why_missing": value.why or None, "provenance": [s.to_json() for s in value.sources]}


def dataset_json(ev: Evaluation) -> dict[str, Any]:
    d = ev.dataset
    return {"key": d.key(), "label": d.label, "name": d.name, "split": d.split, "limit": d.limit,
            "content": d.content or None, "size": d.size, "source": ev.source}


def to_json(board: Leaderboard) -> dict[str, Any]:
    """Every leaderboard number with its provenance, plus every stored metric of every row used."""
    rows = []
    for i, ev in enumerate(board.evaluations):
        rows.append({
            "model": {"fingerprint": ev.fingerprint, "name": ev.label, "arch": ev.model.arch,
                      "recipe": ev.model.recipe, "num_params": ev.model.num_params, "trained_on": ev.model.dataset},
            "dataset": dataset_json(ev),
            "cells": {c.key: cell_json(c, board.cells[i][c.key]) for c in board.columns},
            "tasks": [{"task": r.id.task.key(), "label": r.id.task.label(), "kind": r.id.task.kind, "suite": r.suite,
                       "seed": r.id.seed, "params": r.params, "metrics": r.metrics,
                       "shiftlab_version": r.shiftlab_version, "run_id": r.run_id, "started_at": r.started_at}
                      for r in ev.rows],
        })
    document: dict[str, Any] = json_safe({
        "shiftlab_version": __version__,
        "columns": [{"key": c.key, "label": c.label, "help": c.help} for c in TEXT_COLUMNS]
        + [{"key": c.key, "label": c.label, "unit": c.quantity.unit, "higher_is_better": c.quantity.higher_is_better,
            "help": c.help} for c in board.columns],
        "rows": rows,
    })
    return document


def dumps(board: Leaderboard) -> str:
    return json.dumps(to_json(board), indent=2, allow_nan=False, ensure_ascii=False) + "\n"
