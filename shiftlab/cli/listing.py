"""``shiftlab list FAMILY``: what is registered, with a one-line description and its paper."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from shiftlab.cli.common import command, console
from shiftlab.cli.render import print_table
from shiftlab.core.errors import UserError
from shiftlab.core.registry import Registry


def describe(meta: Any, obj: Any) -> str:
    """A registry entry's description (and paper) from its metadata."""
    text = (getattr(meta, "description", "") or getattr(obj, "description", "") or getattr(meta, "family", "") or "")
    paper = getattr(meta, "paper", "")
    return f"{text} — {paper}" if paper and paper not in text else text


def registries() -> dict[str, Callable[[], list[Registry[Any, Any]]]]:
    """Family name -> the registries listed under it (attacks include the ensembles)."""

    def attacks() -> list[Registry[Any, Any]]:
        from shiftlab.attacks import ATTACKS, ENSEMBLES

        return [ATTACKS, ENSEMBLES]

    def one(module: str, attr: str) -> Callable[[], list[Registry[Any, Any]]]:
        def get() -> list[Registry[Any, Any]]:
            import importlib

            return [getattr(importlib.import_module(module), attr)]

        return get

    return {"models": one("shiftlab.models", "MODELS"), "datasets": one("shiftlab.data", "DATASETS"),
            "suites": one("shiftlab.evaluation", "SUITES"), "recipes": one("shiftlab.training", "RECIPES"),
            "shifts": one("shiftlab.shifts", "SHIFTS"), "attacks": attacks,
            "metrics": one("shiftlab.metrics", "METRICS"), "detectors": one("shiftlab.ood", "DETECTORS")}


@command("list")
def list_registry(
    family: str = typer.Argument(..., help="models, datasets, suites, recipes, shifts, attacks, metrics, detectors"),
    pattern: str = typer.Option(None, "--filter", help="shell pattern, e.g. '*blur*'"),
) -> None:
    """List what is registered in one family."""
    known = registries()
    if family not in known:
        raise UserError(f"unknown family {family!r}; use one of {', '.join(known)}")
    rows = [[name, describe(reg.meta(name), reg.get(name))] for reg in known[family]() for name in reg.names(pattern)]
    print_table(console, family, ["name", "description"], rows, numeric=[False, False])
