"""The corruption grid that several suites share (corruptions, calibration, OOD's near-OOD sets):
its flags, declared once, and the cells they select."""

from __future__ import annotations

from collections.abc import Sequence

from shiftlab.core.identity import CorruptionCell, table_for_size
from shiftlab.evaluation.flags import Flag, parse_names, parse_severities, parse_table
from shiftlab.shifts import SEVERITIES, SHIFTS, benchmark_names

CORRUPTIONS = Flag("corruptions", "comma-separated corruption names (see `shiftlab list shifts`)",
                   parse_names(SHIFTS.entry, "--corruptions"), metavar="NAMES")
SEVERITIES_FLAG = Flag("severities", "comma-separated severities 1..5, e.g. 1,3,5", parse_severities,
                       metavar="LIST")
PARAMS = Flag("params", "corruption parameter table: cifar, tiny or imagenet (default: by image size)",
              parse_table, metavar="TABLE")


def resolve_table(table: str | None, image_size: tuple[int, int]) -> str:
    """The table asked for, else the one the image size picks."""
    return table if table is not None else table_for_size(*image_size)


def corruption_grid(image_size: tuple[int, int], corruptions: Sequence[str] | None, severities: Sequence[int] | None,
                    table: str | None, default: Sequence[str] | None = None) -> list[CorruptionCell]:
    """Every (corruption, severity) cell asked for; ``default`` names when none are (all 19 otherwise)."""
    names = list(corruptions) if corruptions else list(default if default is not None else SHIFTS.names())
    chosen = resolve_table(table, image_size)
    return [CorruptionCell(name, int(s), chosen) for name in names for s in (severities or SEVERITIES)]


__all__ = ["CORRUPTIONS", "PARAMS", "SEVERITIES_FLAG", "benchmark_names", "corruption_grid", "resolve_table"]
