"""The shiftlab command line (Typer + Rich). One module per command group; nothing imports this package."""

from __future__ import annotations

import logging
import sys

import typer

from shiftlab.cli import data, demo, evaluate, listing, report, train, zoo  # noqa: F401  (registers the commands)
from shiftlab.cli.common import INTERRUPTED, app, err_console, error_line
from shiftlab.core.allocator import keep_freed_memory
from shiftlab.core.errors import UserError


def main() -> None:
    """Entry point (the ``shiftlab`` console script and ``python -m shiftlab``)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    keep_freed_memory()  # large CPU tensors reuse freed heap memory instead of fresh, page-faulting mmaps
    try:
        code = app(standalone_mode=False)
    except UserError as exc:  # raised outside a command body
        error_line(" ".join(str(exc).split()))
        sys.exit(2)
    except typer.TyperException as exc:  # bad flag or value: one line, not a usage box
        error_line(" ".join(exc.format_message().split()) + " (see --help)")
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err_console.print(INTERRUPTED)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["app", "main"]
