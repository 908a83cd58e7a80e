"""Temperature scaling (Guo, Pleiss, Sun & Weinberger 2017, "On Calibration of Modern Neural
Networks", arXiv:1706.04599).

One scalar T > 0 divides the logits; it is fitted by minimising the negative log-likelihood on a
held-out validation split (never the test set). The NLL of ``logits / T`` is convex in 1/T, hence
unimodal in log T, so a bounded golden-section search over log T finds the minimum deterministically
(no random start, no learning rate), in float64. Accuracy is unchanged: scaling keeps the argmax.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOG_T_BOUNDS = (math.log(0.05), math.log(50.0))
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True, slots=True)
class TemperatureFit:
    """A fitted temperature with the validation NLL before (T = 1) and after scaling."""

    temperature: float
    nll_before: float
    nll_after: float
    n: int

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """Scaled logits ``logits / T``."""
        return logits / self.temperature


def nll_at_temperature(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Mean cross-entropy of ``softmax(logits / T)`` in float64."""
    return float(F.cross_entropy(logits.double() / temperature, labels))


def fit_temperature(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    bounds: tuple[float, float] = LOG_T_BOUNDS,
    tol: float = 1e-7,
    max_iter: int = 200,
) -> TemperatureFit:
    """Fit T minimising validation NLL by golden-section search over log T in ``bounds``.

    Args:
        logits: N×K validation logits (any float dtype; evaluated in float64).
        labels: N int64 labels.
        bounds: search interval of log T (default log 0.05 .. log 50).
        tol: stop when the bracket on log T is narrower than this.
        max_iter: iteration cap (the bracket shrinks by 0.618 per iteration).

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> logits = torch.randn(1000, 5, generator=g, dtype=torch.float64)
        >>> labels = torch.multinomial(logits.softmax(1), 1, generator=g).squeeze(1)  # calibrated at T = 1
        >>> round(fit_temperature(logits * 4, labels).temperature / 4, 1)  # undoes the over-confidence
        1.0
    """
    if logits.ndim != 2 or labels.shape != (logits.shape[0],) or logits.shape[0] == 0:
        raise ValueError("fit_temperature needs N×K logits and N labels with N > 0")
    z = logits.detach().double().cpu()
    y = labels.detach().long().cpu()

    def loss(log_t: float) -> float:
        return float(F.cross_entropy(z / math.exp(log_t), y))

    lo, hi = bounds
    a, b = hi - _GOLDEN * (hi - lo), lo + _GOLDEN * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(max_iter):
        if hi - lo < tol:
            break
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - _GOLDEN * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + _GOLDEN * (hi - lo)
            fb = loss(b)
    log_t = (lo + hi) / 2.0
    # Never return a worse fit than the unscaled logits (T = 1 lies inside the default bounds).
    best_log_t = log_t if loss(log_t) <= loss(0.0) or not (bounds[0] <= 0.0 <= bounds[1]) else 0.0
    return TemperatureFit(
        temperature=math.exp(best_log_t), nll_before=loss(0.0), nll_after=loss(best_log_t), n=int(y.numel())
    )
