"""Report figures: matplotlib (Agg) rendered to SVG strings that are inlined into the pages.

Every function returns ``None`` when it has nothing to draw, so pages show a note instead of an
empty figure. Colours come from :func:`model_colors` so a model has one colour on every page.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from shiftlab.report.summaries import AttackPoint, RocCurve  # noqa: E402

STYLE: Any = {
    "svg.fonttype": "none",  # keep text as text: smaller, searchable, selectable
    "svg.hashsalt": "shiftlab-report",  # deterministic element ids
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
PALETTE = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab10").colors]  # type: ignore[attr-defined]
SERIES = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("Dark2").colors]  # type: ignore[attr-defined]
_counter = [0]


def model_colors(fingerprints: Sequence[str]) -> dict[str, str]:
    """One colour per model, assigned in sorted-fingerprint order (stable across pages and runs)."""
    ordered = sorted(set(fingerprints))
    return {fp: PALETTE[i % len(PALETTE)] for i, fp in enumerate(ordered)}


def to_svg(fig: Figure) -> str:
    """The figure as an inline ``<svg>`` element with ids made unique within the page."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    _counter[0] += 1
    prefix = f"s{_counter[0]}"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", text)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', text)


def _figure(width: float = 5.0, height: float = 3.2, ncols: int = 1) -> tuple[Figure, list[Any]]:
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, ncols, figsize=(width * ncols if ncols > 1 else width, height), squeeze=False)
    return fig, list(axes[0])


def heatmap(names: list[str], severities: list[int], grid: list[list[float | None]], label: str) -> str | None:
    """Corruption × severity grid of a fraction-valued metric, shown in percent."""
    if not names or not severities:
        return None
    with plt.rc_context(STYLE | {"axes.grid": False}):
        fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(severities), 0.9 + 0.28 * len(names)))
        values = [[math.nan if v is None else 100 * v for v in row] for row in grid]
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                text = "—" if v is None else f"{100 * v:.0f}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if v is None or v < 0.6 else "black")
        ax.set_xticks(range(len(severities)), [str(s) for s in severities])
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("severity (1 = mild … 5 = severe)")
        fig.colorbar(image, ax=ax, label=f"{label} (%)")
        return to_svg(fig)


def severity_curves(curves: dict[str, list[tuple[int, float]]], clean: float | None, label: str) -> str | None:
    """One line per corruption family: metric (%) against severity, with clean at severity 0."""
    if not curves:
        return None
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for i, (family, points) in enumerate(curves.items()):
            xs = [0] + [s for s, _ in points] if clean is not None else [s for s, _ in points]
            ys = ([100 * clean] if clean is not None else []) + [100 * v for _, v in points]
            ax.plot(xs, ys, marker="o", color=SERIES[i % len(SERIES)], label=family)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel(f"{label} (%)")
        ax.set_ylim(0, 100)
        ax.legend(fontsize=7, frameon=False)
        return to_svg(fig)


def attack_curves(points: list[AttackPoint]) -> str | None:
    """Robust accuracy (%) against the budget ε, one line per attack plus the worst case, per norm."""
    points = [p for p in points if p.robust_accuracy is not None]
    if not points:
        return None
    norms = sorted({p.norm for p in points})
    with plt.rc_context(STYLE):
        fig, axes = _figure(4.6, 3.2, len(norms))
        for ax, norm in zip(axes, norms, strict=True):
            mine = [p for p in points if p.norm == norm]
            attacks = sorted({p.attack for p in mine})
            for i, attack in enumerate(attacks):
                pts = sorted((p.eps, 100 * (p.robust_accuracy or 0.0)) for p in mine if p.attack == attack)
                ax.plot([e for e, _ in pts], [a for _, a in pts], marker="o", color=SERIES[i % len(SERIES)],
                        label=attack, alpha=0.85)
            worst: dict[float, float] = {}
            for p in mine:
                worst[p.eps] = min(worst.get(p.eps, 101.0), 100 * (p.robust_accuracy or 0.0))
            if len(attacks) > 1:
                xs = sorted(worst)
                ax.plot(xs, [worst[x] for x in xs], color="black", linestyle="--", linewidth=2, label="worst case")
            ticks = sorted({(p.eps, p.eps_display) for p in mine})
            if len(ticks) <= 8:
                ax.set_xticks([e for e, _ in ticks], [d for _, d in ticks])
            ax.set_xlabel(f"budget ε ({norm}, pixel scale [0, 1])")
            ax.set_ylabel("robust accuracy (%)")
            ax.set_ylim(0, 100)
            ax.legend(fontsize=7, frameon=False)
        return to_svg(fig)


def reliability(diagrams: dict[str, dict[str, list[float]]]) -> str | None:
    """Reliability diagrams side by side (Guo et al. 2017): accuracy per confidence bin vs the diagonal."""
    if not diagrams:
        return None
    with plt.rc_context(STYLE):
        fig, axes = _figure(3.1, 3.0, len(diagrams))
        for ax, (title, rel) in zip(axes, diagrams.items(), strict=True):
            upper = rel["bin_upper"]
            width = upper[0] if upper else 1.0
            kept = [i for i, n in enumerate(rel["count"]) if n > 0]
            ax.bar([upper[i] - width / 2 for i in kept], [rel["accuracy"][i] for i in kept], width=width * 0.9,
                   color="#4c72b0", label="accuracy")
            ax.plot([rel["confidence"][i] for i in kept], [rel["accuracy"][i] for i in kept], "o", color="#dd8452",
                    markersize=3, label="(mean confidence, accuracy)")
            ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_title(title)
            ax.set_xlabel("confidence (max softmax)")
        axes[0].set_ylabel("accuracy (fraction)")
        axes[0].legend(fontsize=7, frameon=False, loc="upper left")
        return to_svg(fig)


def ece_boxes(by_severity: dict[int, list[float]]) -> str | None:
    """ECE (%) over corruptions at each severity, as in Ovadia et al. (2019, arXiv:1906.02530)."""
    if not any(by_severity.values()) or set(by_severity) == {0}:
        return None
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5, 3.2))
        keys = list(by_severity)
        ax.boxplot([[100 * v for v in by_severity[k]] for k in keys], positions=range(len(keys)), widths=0.5)
        ax.set_xticks(range(len(keys)), ["clean" if k == 0 else str(k) for k in keys])
        ax.set_xlabel("shift intensity (corruption severity)")
        ax.set_ylabel("ECE (%)")
        return to_svg(fig)


def roc_plots(curves: list[RocCurve]) -> str | None:
    """ROC curves, one panel per OOD set, one line per detector."""
    curves = [c for c in curves if c.fpr]
    if not curves:
        return None
    sets = sorted({c.ood_set for c in curves})
    with plt.rc_context(STYLE):
        fig, axes = _figure(3.3, 3.2, len(sets))
        for ax, name in zip(axes, sets, strict=True):
            for i, c in enumerate(sorted((c for c in curves if c.ood_set == name), key=lambda c: c.detector)):
                auroc = "" if c.auroc is None else f" (AUROC {100 * c.auroc:.1f}%)"
                ax.plot(c.fpr, c.tpr, color=SERIES[i % len(SERIES)], label=f"{c.detector}{auroc}")
            ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1)
            ax.set_title(f"OOD set: {name}")
            ax.set_xlabel("false positive rate (fraction)")
            ax.set_ylabel("true positive rate (fraction)")
            ax.legend(fontsize=7, frameon=False, loc="lower right")
        return to_svg(fig)


def pareto(points: list[tuple[str, str, float, float]], front: set[str], xlabel: str, ylabel: str,
           higher: tuple[bool, bool]) -> str | None:
    """Scatter of models on two axes (label, colour, x, y); the non-dominated ones ringed and joined."""
    if not points:
        return None
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        for label, color, x, y in points:
            on = label in front
            ax.scatter([x], [y], s=70 if on else 35, color=color, edgecolors="black" if on else "none",
                       linewidths=1.5, zorder=3)
            ax.annotate(label, (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
        line = sorted(((x, y) for label, _, x, y in points if label in front), reverse=higher[0])
        if len(line) > 1:
            ax.step([x for x, _ in line], [y for _, y in line], where="post", color="black", linewidth=1,
                    linestyle=":", zorder=2)
        ax.set_xlabel(xlabel + (" ↑" if higher[0] else " ↓"))
        ax.set_ylabel(ylabel + (" ↑" if higher[1] else " ↓"))
        return to_svg(fig)


def radar(axes_labels: list[str], values: list[float | None], color: str, title: str) -> str | None:
    """A radar chart of fraction-valued scores (higher is better); missing axes drawn at 0 and marked."""
    if len(axes_labels) < 3 or all(v is None for v in values):
        return None
    angles = [2 * math.pi * i / len(axes_labels) for i in range(len(axes_labels))]
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(3.3, 3.3))
        ax = fig.add_subplot(projection="polar")
        r = [100 * (v or 0.0) for v in values]
        ax.plot(angles + angles[:1], r + r[:1], color=color, linewidth=2)
        ax.fill(angles + angles[:1], r + r[:1], color=color, alpha=0.25)
        labels = [f"{a}\n(not run)" if v is None else a for a, v in zip(axes_labels, values, strict=True)]
        ax.set_xticks(angles, labels, fontsize=7)
        ax.set_ylim(0, 100)
        ax.set_yticks([25, 50, 75, 100], ["25%", "50%", "75%", "100%"], fontsize=6)
        ax.set_title(title, fontsize=9)
        return to_svg(fig)
