"""Suite options as the CLI and the Python API see them: each declared once, validated in one place.

A :class:`Flag` names an option (``severities`` in Python, ``--severities`` on the command line),
says what it means, and parses it: from the CLI's text or from a Python value, into the validated
value, raising a one-line :class:`~shiftlab.core.errors.UserError` otherwise. A suite's options are
a frozen dataclass whose ``FLAGS`` lists the flags it reads; flags shared by several suites (the
corruption grid) are the same objects, so they mean and validate the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol, TypeVar

from shiftlab.core.errors import UserError
from shiftlab.core.identity import check_table


@dataclass(frozen=True)
class Flag:
    """One suite option.

    Args:
        name: the Python keyword and options-dataclass field; the CLI flag is ``--name`` with dashes.
        help: one line for ``--help``.
        parse: CLI text or a Python value -> the validated value (raises UserError).
        repeatable: on the CLI the flag may be given several times (its values are collected).
    """

    name: str
    help: str
    parse: Callable[[Any], Any]
    repeatable: bool = False
    metavar: str = "TEXT"

    @property
    def cli(self) -> str:
        return "--" + self.name.replace("_", "-")


class HasFlags(Protocol):
    FLAGS: tuple[Flag, ...]


OptionsT = TypeVar("OptionsT")


def make_options(cls: type[OptionsT], values: Mapping[str, Any]) -> OptionsT:
    """An options dataclass from raw values (CLI text or Python values), each parsed by its flag."""
    flags: tuple[Flag, ...] = getattr(cls, "FLAGS", ())
    kwargs = {f.name: f.parse(values[f.name]) for f in flags if values.get(f.name) is not None}
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in kwargs.items() if k in known})


def items(value: Any, flag: str) -> list[str]:
    """'a,b' or ["a", "b"] (or a repeated CLI flag's list) -> ["a", "b"]."""
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, Iterable):
        parts = [p for v in value for p in (v.split(",") if isinstance(v, str) else [v])]
    else:
        parts = [value]
    out = [str(p).strip() for p in parts if str(p).strip()]
    if not out:
        raise UserError(f"{flag} needs at least one value")
    return out


def parse_names(check: Callable[[str], object], flag: str) -> Callable[[Any], tuple[str, ...]]:
    """A parser for a list of registered names; ``check(name)`` raises UnknownNameError for unknown ones."""

    def parse(value: Any) -> tuple[str, ...]:
        names = items(value, flag)
        for name in names:
            check(name)
        return tuple(dict.fromkeys(names))

    return parse


def parse_int(text: Any, flag: str, low: int | None = None, high: int | None = None) -> int:
    try:
        value = int(str(text).strip()) if not isinstance(text, int) or isinstance(text, bool) else text
    except ValueError:
        raise UserError(f"{flag} expects an integer, got {text!r}") from None
    if isinstance(value, bool) or (low is not None and value < low) or (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f"at least {low}"
        raise UserError(f"{flag} must be an integer {span}, got {text!r}")
    return value


def parse_severities(value: Any) -> tuple[int, ...]:
    """Corruption severities: integers 1..5 (the only place they are validated)."""
    return tuple(dict.fromkeys(parse_int(v, "--severities", 1, 5) for v in items(value, "--severities")))


def parse_number(text: Any, flag: str) -> float:
    """A finite number, written as a decimal or a fraction such as 8/255."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        raw = str(text).strip()
        num, slash, den = raw.partition("/")
        try:
            value = float(num) / float(den) if slash else float(raw)
        except ZeroDivisionError:
            raise UserError(f"{flag}: {raw} divides by zero") from None
        except ValueError:
            raise UserError(f"{flag} expects numbers such as 0.1 or 8/255, got {raw!r}") from None
    if not math.isfinite(value):
        raise UserError(f"{flag} must be a finite number, got {text!r}")
    return value


def parse_budgets(value: Any) -> tuple[float, ...]:
    """Positive perturbation budgets, e.g. '0.05,0.1' or '8/255'."""
    budgets = tuple(parse_number(v, "--eps") for v in items(value, "--eps"))
    bad = [b for b in budgets if b <= 0]
    if bad:
        raise UserError(f"--eps values must be positive, got {bad[0]:g}")
    return tuple(dict.fromkeys(budgets))


def parse_table(value: Any) -> str:
    return check_table(str(value).strip())


def parse_checkpoint(value: Any) -> str:
    """A checkpoint that exists: a directory with model.json, a weights file with its card, or zoo:NAME."""
    from shiftlab.models import locate

    text = str(value).strip()
    if not locate(text).exists():
        raise UserError(f"checkpoint {text} does not exist")
    return text


def parse_choice(choices: Sequence[str], flag: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower()
        if text not in choices:
            raise UserError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
        return text

    return parse
