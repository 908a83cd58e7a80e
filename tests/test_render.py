"""Issue 14, item 9, and issue 13, defect 4: the terminal output people read."""

from __future__ import annotations

import re

from rich.console import Console
from rich.progress import Progress

from shiftlab.cli.progress import RichEvalProgress
from shiftlab.cli.render import print_results, print_table
from shiftlab.core.identity import AttackPoint, CalibrationCell, DatasetIdentity, Summary
from shiftlab.store import ResultKey, TaskRow

DS = DatasetIdentity("fashion-mnist", "test", 200, "ab" * 32, 200)


def row(task, metrics):
    return TaskRow(ResultKey("fp", DS, task, 0), {}, metrics)


def piped(width=80):
    return Console(width=width, record=True, force_terminal=False, color_system=None)


def test_piped_tables_are_plain_text_and_never_cut():
    out = piped(60)
    print_table(out, "a title", ["model", "interpolated-at accuracy"],
                [["manifold-mixup", "91.8"], ["interpolated-at", "84.9"]])
    text = out.export_text()
    assert not set(text) & set("│─┃━┏┓└┘…")
    assert "manifold-mixup" in text and "interpolated-at" in text and "91.8" in text


def test_a_table_too_wide_for_the_console_becomes_a_list_with_whole_values():
    out = piped(40)
    print_table(out, "wide", ["model", *(f"metric number {i}" for i in range(8))],
                [["interpolated-at", *(f"{90 + i}.5%" for i in range(8))]])
    text = out.export_text()
    assert "interpolated-at: metric number 0 90.5%" in text and "97.5%" in text and "…" not in text


def test_every_metric_is_shown_formatted_by_its_quantity():
    out = piped(400)
    names = ["ece", "ece_adaptive", "mce", "classwise_ece", "nll", "brier", "accuracy"]
    metrics = {**{n: 0.1234 for n in names}, **{f"{n}_ts": 0.05 for n in names}, "temperature": 1.3, "n": 200.0}
    print_results(out, "calibration", [row(CalibrationCell(), metrics)])
    text = out.export_text()
    for name in metrics:
        assert re.search(rf"\b{name}\b", text), name  # all 16 metrics, not the first 8
    assert "12.3%" in text and "1.3000" in text and re.search(r"\b200\b", text) and "200.0000" not in text


def test_sanity_checks_print_pass_fail_or_not_applicable():
    out = piped(120)
    summary = row(Summary("adversarial"), {"sanity/robust_le_clean": 1.0, "sanity/large_eps_zero": 0.0,
                                           "sanity/monotone_in_eps": float("nan")})
    point = row(AttackPoint("apgd-ce", "linf", 0.1), {"robust_accuracy": 0.5, "n": 200.0})
    print_results(out, "adv", [point, summary])
    text = out.export_text()
    assert "pass" in text and "FAIL" in text and "not applicable" in text and "1.0000" not in text


def test_an_evaluation_shows_one_overall_task_line_above_the_task_bar():
    progress = Progress(console=piped())
    bar = RichEvalProgress(progress)
    bar.run_start("erm on fashion-mnist[:200]", 95)
    bar.task_end("clean", "reused")
    bar.task_start("fog s3 (cifar)", 200)
    bar.advance(100)
    tasks = {t.description: t for t in progress.tasks}
    overall = next(t for d, t in tasks.items() if "tasks" in d)
    assert overall.total == 95 and overall.completed == 1
    assert tasks["fog s3 (cifar)"].completed == 100
