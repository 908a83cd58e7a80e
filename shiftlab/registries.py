"""Every family's registry by name (for `shiftlab list` and registry-generated tests).

Families whose package is absent (an optional part) are left out.
"""

from __future__ import annotations

import importlib
from typing import Any

from shiftlab.registry import Registry

FAMILIES: dict[str, tuple[str, str]] = {
    "datasets": ("shiftlab.data", "DATASETS"),
    "models": ("shiftlab.models", "MODELS"),
    "suites": ("shiftlab.evaluate", "SUITES"),
    "recipes": ("shiftlab.train", "RECIPES"),
    "metrics": ("shiftlab.metrics", "METRICS"),
    "shifts": ("shiftlab.shifts", "SHIFTS"),
    "attacks": ("shiftlab.attacks", "ATTACKS"),
    "detectors": ("shiftlab.ood", "DETECTORS"),
}


def all_registries() -> dict[str, Registry[Any]]:
    out: dict[str, Registry[Any]] = {}
    for family, (module, attr) in FAMILIES.items():
        try:
            out[family] = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:  # an optional part that is absent; real import bugs still raise
            if exc.name != module:
                raise
    return out
