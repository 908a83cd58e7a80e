"""Colours that never repeat within a page, and a marker per model as a second cue.

The first ten colours are matplotlib's categorical ``tab10``; beyond them the hue advances by the
golden ratio of a turn (a low-discrepancy sequence: consecutive colours land far apart) over three
lightness bands, and a colour already taken is skipped, so any number of models get distinct
colours. Markers cycle independently, so two models whose colours look alike still differ in shape.
"""

from __future__ import annotations

import colorsys
from collections.abc import Iterable
from dataclasses import dataclass

TAB10 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
         "#17becf")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "p", "h", "*")
GOLDEN = 0.6180339887498949
LIGHTNESS = (0.42, 0.58, 0.32)


@dataclass(frozen=True, slots=True)
class ModelStyle:
    """How one model is drawn on every page: a colour and a marker."""

    color: str
    marker: str


def _hex(hue: float, lightness: float, saturation: float) -> str:
    r, g, b = colorsys.hls_to_rgb(hue % 1.0, lightness, saturation)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


def distinct_colors(n: int) -> list[str]:
    """``n`` pairwise different colours: tab10 first, then golden-angle hues over three lightness bands."""
    colors = list(TAB10[:n])
    taken = set(colors)
    step = 0
    while len(colors) < n:
        candidate = _hex(0.07 + step * GOLDEN, LIGHTNESS[step % len(LIGHTNESS)], 0.55 + 0.15 * ((step // 3) % 3))
        step += 1
        if candidate not in taken:
            taken.add(candidate)
            colors.append(candidate)
    return colors


def model_styles(fingerprints: Iterable[str]) -> dict[str, ModelStyle]:
    """One style per model, in sorted-fingerprint order: the same on every page and on every run."""
    ordered = sorted(set(fingerprints))
    colors = distinct_colors(len(ordered))
    return {fp: ModelStyle(colors[i], MARKERS[i % len(MARKERS)]) for i, fp in enumerate(ordered)}
