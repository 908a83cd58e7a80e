"""Job functions for the executor tests, importable by Ray workers (tests/ is on their path)."""

from __future__ import annotations

from pathlib import Path

from shiftlab.core.errors import UserError


def flaky(marker: str) -> str:
    """Fails on its first call (a marker file remembers it), succeeds on the retry."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise RuntimeError("worker lost")
    return "ok"


def always_fails(_: object) -> None:
    raise UserError("this job cannot run")
