"""Point labels that never overlap each other or the points: greedy first fit over candidate spots.

Each label tries positions around its point at growing distances (right, left, above, below and
the diagonals) and takes the first whose box is clear of every label placed before and of every
marker; a label that finds no clear spot goes below all the others, so the result never overlaps.
All coordinates are display units (pixels).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GAP = 2.0
"""Clearance kept between boxes (pixels)."""


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in display coordinates."""

    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box, gap: float = 0.0) -> bool:
        return not (self.x1 + gap <= other.x0 or other.x1 + gap <= self.x0
                    or self.y1 + gap <= other.y0 or other.y1 + gap <= self.y0)


def around(x: float, y: float, half: float) -> Box:
    """The box of a marker of half-width ``half`` centred on (x, y)."""
    return Box(x - half, y - half, x + half, y + half)


def _candidates(width: float, height: float, distance: float) -> list[tuple[float, float]]:
    """Lower-left offsets of a ``width`` × ``height`` label at ``distance`` from its point."""
    d = distance
    return [(d, d), (d, -d - height), (-d - width, d), (-d - width, -d - height),
            (d, -height / 2), (-d - width, -height / 2), (-width / 2, d), (-width / 2, -d - height)]


def place_labels(anchors: Sequence[tuple[float, float]], sizes: Sequence[tuple[float, float]],
                 obstacles: Sequence[Box] = (), distance: float = 6.0, rings: int = 6) -> list[tuple[float, float]]:
    """Offsets (dx, dy) of each label's lower-left corner from its anchor, such that no two label boxes
    overlap and no label covers an obstacle (the markers).

    Args:
        anchors: each label's point, display coordinates.
        sizes: each label's (width, height), display units.
        obstacles: boxes no label may cover.
        distance: the first ring's distance from the point; ring k is k times as far.
        rings: how many rings to try before stacking the label below the rest.
    """
    if len(anchors) != len(sizes):
        raise ValueError(f"{len(anchors)} anchors but {len(sizes)} label sizes")
    placed: list[Box] = []
    offsets: list[tuple[float, float]] = []
    blocked = list(obstacles)
    for (x, y), (width, height) in zip(anchors, sizes, strict=True):
        choice: tuple[float, float] | None = None
        for ring in range(1, rings + 1):
            for dx, dy in _candidates(width, height, distance * ring):
                box = Box(x + dx, y + dy, x + dx + width, y + dy + height)
                if not any(box.overlaps(other, GAP) for other in placed + blocked):
                    choice = (dx, dy)
                    break
            if choice is not None:
                break
        if choice is None:
            floor = min(b.y0 for b in placed + blocked) - GAP - height - 1.0
            choice = (distance, floor - y)
        dx, dy = choice
        placed.append(Box(x + dx, y + dy, x + dx + width, y + dy + height))
        offsets.append(choice)
    return offsets
