"""``shiftlab report`` and ``shiftlab leaderboard``: read the store, never write it."""

from __future__ import annotations

from pathlib import Path

import typer

from shiftlab.cli.common import command, console
from shiftlab.cli.evaluate import DEFAULT_STORE, STORE_HELP
from shiftlab.cli.render import print_table
from shiftlab.store import Store


@command()
def report(
    store: str = typer.Option(DEFAULT_STORE, help=STORE_HELP),
    out: Path = typer.Option(Path("report"), help="directory the report is written to"),
    fmt: str = typer.Option("html", "--format", help="html (offline static site), md or json (leaderboard)"),
    sort: str = typer.Option(None, help="leaderboard column to sort by (default clean_acc)"),
) -> None:
    """Write the robustness report (leaderboard, robustness cards, comparison) from the store only."""
    from shiftlab.report import FORMATS, write_report

    if fmt not in FORMATS:
        from shiftlab.core.errors import UserError

        raise UserError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    with Store(store, create=False) as db:
        path = write_report(db, out, fmt, sort)
    console.print(f"report written: {path}", highlight=False)


@command()
def leaderboard(
    store: str = typer.Option(DEFAULT_STORE, help=STORE_HELP),
    sort: str = typer.Option(None, help="column key to sort by (default clean_acc)"),
) -> None:
    """Print the leaderboard of every model in the store."""
    from shiftlab.report import leaderboard_table, load_leaderboard

    with Store(store, create=False) as db:
        board = load_leaderboard(db, sort)
    headers, rows = leaderboard_table(board)
    print_table(console, f"shiftlab leaderboard ({store})", headers, rows,
                caption="headers are --sort keys; accuracies, ECE, mCE and AUROC in %")
    if not rows:
        console.print("the store holds no evaluated model yet")
