"""Matplotlib figures rendered to inline SVG, without pyplot and without touching the global backend.

A :class:`~matplotlib.figure.Figure` is built directly and saved with ``format="svg"`` (matplotlib's
SVG canvas), inside ``rc_context`` so no global style changes. Element ids are hashed with a fixed
salt (identical input, identical bytes) and prefixed per figure by the page's :class:`FigureSet`,
so ids are unique within a page and the same on every run. Matplotlib is imported when a figure is
drawn, not with the report, so the leaderboard alone stays quick to load.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STYLE: dict[str, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller, searchable, selectable
    "svg.hashsalt": "shiftlab-report",  # deterministic clip-path and marker ids
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}

_ID = re.compile(r'\bid="([^"]+)"')
_URL = re.compile(r"url\(#([^)]+)\)")
_HREF = re.compile(r'href="#([^"]+)"')


@contextmanager
def styled(**overrides: Any) -> Iterator[None]:
    """The report's matplotlib style for the duration of a block (rcParams restored after)."""
    import matplotlib

    params: Any = STYLE | overrides  # matplotlib types rc_context's keys as a Literal of every rcParam
    with matplotlib.rc_context(params):
        yield


def new_figure(width: float, height: float) -> Figure:
    """A figure that no pyplot state manager knows about (call inside :func:`styled`)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class FigureSet:
    """The figures of one page: numbers them so their SVG ids are unique within the page.

    One is created per page and passed down; nothing is counted at module level, so the same page
    rendered twice is byte-identical.
    """

    def __init__(self, prefix: str = "f") -> None:
        self.prefix = prefix
        self.count = 0

    def svg(self, fig: Figure, titles: Mapping[str, str] | None = None) -> str:
        """The figure as an inline ``<svg>``; ``titles`` maps an artist's gid to its hover text."""
        with styled():
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
        text = buffer.getvalue()
        text = text[text.index("<svg"):]
        text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, flags=re.S)
        for gid, title in (titles or {}).items():
            text = text.replace(f'<g id="{gid}">', f'<g id="{gid}"><title>{_escape(title)}</title>', 1)
        self.count += 1
        scope = f"{self.prefix}{self.count}"
        text = _ID.sub(lambda m: f'id="{scope}-{m.group(1)}"', text)
        text = _URL.sub(lambda m: f"url(#{scope}-{m.group(1)})", text)
        return _HREF.sub(lambda m: f'href="#{scope}-{m.group(1)}"', text)
