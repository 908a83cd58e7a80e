"""What a set of certificates is worth: certified accuracy at a radius (Cohen et al. 2019,
arXiv:1902.02918: the fraction of images predicted correctly with a certified radius of at least r),
its whole curve, and the average certified radius (ACR; Zhai et al. 2020, "MACER: Attack-free and
Scalable Robust Training via Maximizing Certified Radius", arXiv:2001.02378: the mean over images of
the radius, counting 0 for wrong or abstained ones).
"""

from __future__ import annotations

import torch

RADII: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
"""The radii at which certified accuracy is stored."""


def certified_correct(prediction: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Correct and not abstained (an abstention is never correct)."""
    return (prediction == labels.to(prediction.device)) & (prediction >= 0)


def certified_accuracy(radius: torch.Tensor, correct: torch.Tensor, r: float) -> float:
    """Fraction of images that are correct with a certified radius ≥ ``r``."""
    if radius.numel() == 0:
        return float("nan")
    return float((correct & (radius >= r)).double().mean())


def average_certified_radius(radius: torch.Tensor, correct: torch.Tensor) -> float:
    """ACR: mean of the radius over all images, 0 for wrong or abstained ones."""
    if radius.numel() == 0:
        return float("nan")
    return float(torch.where(correct, radius.double(), torch.zeros_like(radius, dtype=torch.float64)).mean())


def accuracy_curve(radius: torch.Tensor, correct: torch.Tensor) -> dict[str, list[float]]:
    """The exact certified-accuracy curve: ``radius[k]`` and the accuracy for every r ≤ ``radius[k]``
    (a step function that drops after each listed radius; 0 beyond the last). Starts at r = 0."""
    n = radius.numel()
    if n == 0:
        return {"radius": [], "certified_accuracy": []}
    kept = sorted((float(r) for r, ok in zip(radius.tolist(), correct.tolist(), strict=True) if ok), reverse=True)
    points: list[tuple[float, float]] = []
    for k, r in enumerate(kept, start=1):
        if points and points[-1][0] == r:
            points[-1] = (r, k / n)
        else:
            points.append((r, k / n))
    points.reverse()
    if not points or points[0][0] > 0:
        points.insert(0, (0.0, len(kept) / n))
    return {"radius": [p[0] for p in points], "certified_accuracy": [p[1] for p in points]}

