"""Out-of-distribution detection metrics on detector scores.

Convention: **in-distribution (ID) samples are the positive class and a higher score means "more
in-distribution"** (as in Hendrycks & Gimpel 2017, arXiv:1610.02136, and OpenOOD, Yang et al. 2022,
arXiv:2210.07242). Then

* AUROC: area under the ROC curve (TPR of ID vs FPR of OOD over all thresholds); ties count 1/2
  (Mann-Whitney U).
* AUPR-in: average precision with ID as positives, ``sum_n (R_n - R_{n-1}) P_n`` over the distinct
  score thresholds (the step-wise definition of scikit-learn's ``average_precision_score``).
* AUPR-out: the same with OOD as positives and the negated score.
* FPR@95: the fraction of OOD samples accepted at the largest threshold t (a distinct score value)
  whose TPR ``P(s_in >= t)`` is at least 95 %: every sample scoring >= t is accepted, so tied
  scores are accepted together.

The accumulators keep every score (a ``cat`` state): ranking metrics need them all.
"""

from __future__ import annotations

import torch

from shiftlab.metrics.base import METRICS, Metric, MetricMeta


def _check(scores_in: torch.Tensor, scores_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s_in = scores_in.detach().double().cpu().reshape(-1)
    s_out = scores_out.detach().double().cpu().reshape(-1)
    if s_in.numel() == 0 or s_out.numel() == 0:
        raise ValueError("OOD metrics need at least one in-distribution and one OOD score")
    if bool(torch.isnan(s_in).any() or torch.isnan(s_out).any()):
        raise ValueError("OOD scores contain NaN")
    return s_in, s_out


def roc_points(scores_in: torch.Tensor, scores_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(fpr, tpr, thresholds) at every distinct score, thresholds descending, starting at (0, 0).

    The point for threshold t accepts every sample with score >= t.
    """
    s_in, s_out = _check(scores_in, scores_out)
    scores = torch.cat([s_in, s_out])
    is_in = torch.cat([torch.ones_like(s_in), torch.zeros_like(s_out)])
    order = torch.argsort(scores, descending=True, stable=True)
    scores, is_in = scores[order], is_in[order]
    last_of_group = torch.ones_like(scores, dtype=torch.bool)
    last_of_group[:-1] = scores[1:] != scores[:-1]
    tp = torch.cumsum(is_in, 0)[last_of_group]
    fp = torch.cumsum(1.0 - is_in, 0)[last_of_group]
    zero = torch.zeros(1, dtype=torch.float64)
    fpr = torch.cat([zero, fp / s_out.numel()])
    tpr = torch.cat([zero, tp / s_in.numel()])
    thresholds = torch.cat([torch.full((1,), float("inf"), dtype=torch.float64), scores[last_of_group]])
    return fpr, tpr, thresholds


def ood_auroc(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """P(s_in > s_out) + P(s_in = s_out) / 2: the trapezoidal area under the ROC curve.

    Example:
        >>> ood_auroc(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([1.0, 0.0]))
        0.9166666666666666
    """
    fpr, tpr, _ = roc_points(scores_in, scores_out)
    return float(torch.trapezoid(tpr, fpr))


def average_precision(scores_pos: torch.Tensor, scores_neg: torch.Tensor) -> float:
    """Step-wise average precision of positives ranked above negatives (higher score = positive)."""
    fpr, tpr, _ = roc_points(scores_pos, scores_neg)
    tp = tpr[1:] * scores_pos.numel()
    fp = fpr[1:] * scores_neg.numel()
    precision = tp / (tp + fp)
    return float(((tpr[1:] - tpr[:-1]) * precision).sum())


def ood_aupr_in(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """Average precision with in-distribution samples as positives."""
    return average_precision(scores_in, scores_out)


def ood_aupr_out(scores_in: torch.Tensor, scores_out: torch.Tensor) -> float:
    """Average precision with OOD samples as positives (scores negated)."""
    return average_precision(-scores_out.double(), -scores_in.double())


def fpr_at_tpr(scores_in: torch.Tensor, scores_out: torch.Tensor, tpr_level: float = 0.95) -> float:
    """OOD acceptance rate at the largest threshold whose ID acceptance rate is >= ``tpr_level``.

    Example:
        >>> s_in = torch.arange(1.0, 21.0)  # 20 ID scores: 95 % TPR needs a threshold of 2
        >>> fpr_at_tpr(s_in, torch.tensor([0.0, 1.5, 2.0, 3.0]))
        0.5
    """
    if not 0.0 < tpr_level <= 1.0:
        raise ValueError(f"tpr_level must be in (0, 1], got {tpr_level}")
    fpr, tpr, _ = roc_points(scores_in, scores_out)
    # A tolerance keeps 0.95 * n from missing an exact count by float rounding.
    reached = torch.nonzero(tpr >= tpr_level - 1e-12)
    return float(fpr[int(reached[0])])


def downsample_curve(fpr: torch.Tensor, tpr: torch.Tensor, max_points: int = 200) -> dict[str, list[float]]:
    """At most ``max_points`` ROC points (evenly spaced by index; first and last kept)."""
    n = int(fpr.numel())
    if n > max_points:
        idx = torch.linspace(0, n - 1, max_points).round().long().unique()
        fpr, tpr = fpr[idx], tpr[idx]
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist()}


class _OODRanking(Metric):
    scores: list[torch.Tensor]
    is_in: list[torch.Tensor]

    """Keeps scores and in/out flags; ``update(scores, is_in)`` with ``is_in`` a bool tensor."""


    def __init__(self) -> None:
        super().__init__()
        self.add_state("scores", lambda: torch.empty(0, dtype=torch.float64), "cat")
        self.add_state("is_in", lambda: torch.empty(0, dtype=torch.bool), "cat")

    def update(self, scores: torch.Tensor, is_in: torch.Tensor | bool) -> None:
        s = scores.detach().double().cpu().reshape(-1)
        flags = torch.as_tensor(is_in, dtype=torch.bool).cpu().reshape(-1).expand(s.numel())
        self.scores.append(s)
        self.is_in.append(flags.clone())
        self._touch()

    def split_scores(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(in-distribution scores, OOD scores)."""
        s = self.cat_state("scores")
        flags = self.cat_state("is_in").bool()
        return s[flags], s[~flags]

    def roc(self, max_points: int = 200) -> dict[str, list[float]]:
        """Downsampled ROC curve {fpr, tpr}."""
        fpr, tpr, _ = roc_points(*self.split_scores())
        return downsample_curve(fpr, tpr, max_points)


@METRICS.register("auroc", meta=MetricMeta("OOD AUROC (ID positive)", "Hendrycks & Gimpel 2017"))
class AUROC(_OODRanking):
    """Streaming OOD AUROC."""

    def _compute(self) -> float:
        return ood_auroc(*self.split_scores())


@METRICS.register("aupr_in", meta=MetricMeta("OOD AUPR with ID as positives", "Hendrycks & Gimpel 2017"))
class AUPRIn(_OODRanking):
    """Streaming AUPR-in."""

    def _compute(self) -> float:
        return ood_aupr_in(*self.split_scores())


@METRICS.register("aupr_out", meta=MetricMeta("OOD AUPR with OOD as positives", "Hendrycks & Gimpel 2017"))
class AUPROut(_OODRanking):
    """Streaming AUPR-out."""

    def _compute(self) -> float:
        return ood_aupr_out(*self.split_scores())


@METRICS.register("fpr95", meta=MetricMeta("OOD false-positive rate at 95 % ID recall", "Liang et al. 2018"))
class FPR95(_OODRanking):
    """Streaming FPR at 95 % TPR (lower is better)."""


    def _compute(self) -> float:
        return fpr_at_tpr(*self.split_scores(), 0.95)
