"""The Typer application, its consoles, and the guard every command runs under.

User mistakes (unknown names, missing files, bad values) print one line on stderr and exit 2;
Ctrl-C keeps every finished task in the store and exits 130 with a note on how to resume.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from shiftlab.core.errors import UserError

app = typer.Typer(
    name="shiftlab",
    help="How does my image classifier behave under distribution shift, and which recipe makes it better?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
zoo_app = typer.Typer(help="shiftlab's own Fashion-MNIST models, one per training recipe", no_args_is_help=True)
app.add_typer(zoo_app, name="zoo")
console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])
INTERRUPTED = "interrupted: every finished task is kept; rerun the same command to resume"


def error_line(message: str) -> None:
    """One line on stderr (never wrapped or styled into several lines)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)


def fail(message: str, code: int = 2) -> None:
    error_line(message)
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """Turn user errors into one line + exit 2 and Ctrl-C into a resume hint + exit 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            fail(" ".join(str(exc).split()))
        except KeyboardInterrupt:
            err_console.print(INTERRUPTED)
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def command(*args: Any, group: typer.Typer = app, **kwargs: Any) -> Callable[[F], F]:
    """``group.command`` (the main app by default) with ``guarded`` applied: use it for every subcommand."""

    def decorator(fn: F) -> F:
        group.command(*args, **kwargs)(guarded(fn))
        return fn

    return decorator
