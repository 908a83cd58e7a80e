"""Calibration errors of top-label and class-wise confidence, as streaming accumulators.

Definitions (n samples, confidence ``c_i = max_k p_ik``, prediction ``argmax_k p_ik``):

* **ECE**, equal-width bins (Naeini, Cooper & Hauskrecht 2015; Guo, Pleiss, Sun & Weinberger 2017,
  "On Calibration of Modern Neural Networks", arXiv:1706.04599):
  ``ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|``, bins ``(b/M, (b+1)/M]``, M = 15 by default.
* **MCE** (same papers): ``max_b |acc(B_b) - conf(B_b)|`` over non-empty bins.
* **Equal-mass ECE** (Nixon, Dusenberry, Zhang, Jerfel & Tran 2019, "Measuring Calibration in Deep
  Learning", arXiv:1904.01685): the ECE formula with bins holding (almost) equal numbers of samples:
  confidences sorted ascending (stable) and cut into M contiguous groups whose sizes differ by at most
  one, the larger groups first (``numpy.array_split``). Bin edges therefore depend on all scores, so
  this accumulator keeps the (confidence, correct) pairs (a ``cat`` state).
* **Class-wise ECE** (Kull, Perello-Nieto, Kängsepp, Silva Filho, Song & Flach 2019, "Beyond
  temperature scaling", arXiv:1910.12656): for every class k, the equal-width-bin ECE of ``p_ik``
  against the indicator ``1[y_i = k]``, averaged over the K classes. Fixed-size K×M state.

Every equal-width binning puts a score s in bin ``ceil(s*M) - 1`` clamped to [0, M-1] (a score of
exactly 0 lands in bin 0).
"""

from __future__ import annotations

import torch

from shiftlab.metrics.base import METRICS, Metric, MetricMeta

DEFAULT_BINS = 15


def _bin_index(scores: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Equal-width bin of each score in (b/M, (b+1)/M]; 0 goes to bin 0."""
    return (torch.ceil(scores.double() * n_bins) - 1).clamp(0, n_bins - 1).long()


def _check_bins(n_bins: int) -> None:
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")


def confidence_bin_stats(
    probs: torch.Tensor, targets: torch.Tensor, n_bins: int = DEFAULT_BINS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-bin (count, confidence sum, correct sum) of the top-label confidence, equal-width bins.

    Bin b holds confidences in (b/M, (b+1)/M]; a confidence of exactly 0 goes to bin 0.
    """
    _check_bins(n_bins)
    conf, pred = probs.max(1)
    correct = (pred == targets).double().cpu()
    idx = _bin_index(conf, n_bins).cpu()
    zeros = torch.zeros(n_bins, dtype=torch.float64)
    count = zeros.clone().index_add_(0, idx, torch.ones_like(correct))
    conf_sum = zeros.clone().index_add_(0, idx, conf.double().cpu())
    correct_sum = zeros.clone().index_add_(0, idx, correct)
    return count, conf_sum, correct_sum


def ece_from_bins(count: torch.Tensor, conf_sum: torch.Tensor, correct_sum: torch.Tensor) -> float:
    """ECE from per-bin statistics (sum over bins of |conf sum - correct sum| / n)."""
    n = count.sum()
    if n == 0:
        return float("nan")
    return float((conf_sum - correct_sum).abs().sum() / n)


def mce_from_bins(count: torch.Tensor, conf_sum: torch.Tensor, correct_sum: torch.Tensor) -> float:
    """MCE from per-bin statistics: the largest |accuracy - confidence| over non-empty bins."""
    filled = count > 0
    if not bool(filled.any()):
        return float("nan")
    gap = (conf_sum[filled] - correct_sum[filled]).abs() / count[filled]
    return float(gap.max())


def reliability_from_bins(count: torch.Tensor, conf_sum: torch.Tensor, correct_sum: torch.Tensor) -> dict[str, list[float]]:
    """Reliability-diagram data: per equal-width bin, its edges, mean confidence, accuracy and count.

    Empty bins report confidence and accuracy 0 with count 0 (plotters skip them by count).
    """
    m = int(count.numel())
    safe = count.clamp_min(1)
    return {
        "bin_lower": [b / m for b in range(m)],
        "bin_upper": [(b + 1) / m for b in range(m)],
        "confidence": (conf_sum / safe).tolist(),
        "accuracy": (correct_sum / safe).tolist(),
        "count": count.tolist(),
    }


def expected_calibration_error(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = DEFAULT_BINS) -> float:
    """Equal-width-bin ECE of top-1 confidence (Guo et al. 2017).

    Args:
        probs: N×K class probabilities.
        targets: N int64 labels.
        n_bins: number of equal-width bins (default 15).

    Example:
        >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]], dtype=torch.float64)
        >>> round(expected_calibration_error(probs, torch.tensor([0, 1, 1]), n_bins=2), 4)
        0.1333
    """
    return ece_from_bins(*confidence_bin_stats(probs, targets, n_bins))


def maximum_calibration_error(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = DEFAULT_BINS) -> float:
    """Equal-width-bin MCE of top-1 confidence (Naeini et al. 2015; Guo et al. 2017)."""
    return mce_from_bins(*confidence_bin_stats(probs, targets, n_bins))


def equal_mass_ece_from_scores(conf: torch.Tensor, correct: torch.Tensor, n_bins: int = DEFAULT_BINS) -> float:
    """Equal-mass-bin ECE from top-1 confidences and 0/1 correctness (Nixon et al. 2019).

    Samples are sorted by confidence (stable) and split into ``min(M, n)`` contiguous groups whose
    sizes differ by at most one, larger groups first.
    """
    _check_bins(n_bins)
    n = int(conf.numel())
    if n == 0:
        return float("nan")
    order = torch.sort(conf.double().cpu(), stable=True).indices
    conf_sorted = conf.double().cpu()[order]
    correct_sorted = correct.double().cpu()[order]
    groups = min(n_bins, n)
    base, extra = divmod(n, groups)
    sizes = torch.full((groups,), base, dtype=torch.long)
    sizes[:extra] += 1
    bin_of = torch.repeat_interleave(torch.arange(groups), sizes)
    gap = torch.zeros(groups, dtype=torch.float64).index_add_(0, bin_of, conf_sorted - correct_sorted)
    return float(gap.abs().sum() / n)


def adaptive_calibration_error(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = DEFAULT_BINS) -> float:
    """Equal-mass-bin ECE of top-1 confidence (Nixon et al. 2019)."""
    conf, pred = probs.max(1)
    return equal_mass_ece_from_scores(conf, pred == targets, n_bins)


def classwise_bin_stats(
    probs: torch.Tensor, targets: torch.Tensor, n_bins: int = DEFAULT_BINS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (class, bin) count, probability sum and label sum, each K×M (Kull et al. 2019)."""
    _check_bins(n_bins)
    n, k = probs.shape
    p = probs.double().cpu()
    onehot = torch.zeros(n, k, dtype=torch.float64).scatter_(1, targets.cpu().long().view(-1, 1), 1.0)
    flat = (torch.arange(k).view(1, k) * n_bins + _bin_index(p, n_bins)).reshape(-1)
    zeros = torch.zeros(k * n_bins, dtype=torch.float64)
    count = zeros.clone().index_add_(0, flat, torch.ones(n * k, dtype=torch.float64))
    prob_sum = zeros.clone().index_add_(0, flat, p.reshape(-1))
    label_sum = zeros.clone().index_add_(0, flat, onehot.reshape(-1))
    return count.view(k, n_bins), prob_sum.view(k, n_bins), label_sum.view(k, n_bins)


def classwise_ece_from_bins(count: torch.Tensor, prob_sum: torch.Tensor, label_sum: torch.Tensor) -> float:
    """Class-wise ECE from K×M statistics: mean over classes of each class's binned ECE."""
    n = count[0].sum() if count.numel() else torch.tensor(0.0)
    if n == 0:
        return float("nan")
    return float(((prob_sum - label_sum).abs().sum(1) / n).mean())


def classwise_calibration_error(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = DEFAULT_BINS) -> float:
    """Class-wise ECE with equal-width bins (Kull et al. 2019)."""
    return classwise_ece_from_bins(*classwise_bin_stats(probs, targets, n_bins))


class _TopLabelBinned(Metric):
    count: torch.Tensor
    conf_sum: torch.Tensor
    correct_sum: torch.Tensor

    """Shared O(bins) state of ECE and MCE: count, confidence sum and correct sum per bin."""


    def __init__(self, n_bins: int = DEFAULT_BINS) -> None:
        super().__init__()
        _check_bins(n_bins)
        self.n_bins = n_bins
        self.add_state("count", lambda: torch.zeros(n_bins, dtype=torch.float64), "sum")
        self.add_state("conf_sum", lambda: torch.zeros(n_bins, dtype=torch.float64), "sum")
        self.add_state("correct_sum", lambda: torch.zeros(n_bins, dtype=torch.float64), "sum")

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        c, s, k = confidence_bin_stats(logits.detach().double().softmax(1), targets, self.n_bins)
        self.count = self.count + c
        self.conf_sum = self.conf_sum + s
        self.correct_sum = self.correct_sum + k
        self._touch()

    def reliability(self) -> dict[str, list[float]]:
        """Reliability-diagram data: per-bin edges, mean confidence, accuracy and count."""
        return reliability_from_bins(self.count, self.conf_sum, self.correct_sum)


@METRICS.register("ece", meta=MetricMeta("expected calibration error, 15 equal-width bins", "Guo et al. 2017"))
class ECE(_TopLabelBinned):
    """Streaming ECE: O(bins) state (count, confidence sum, correct sum per bin)."""

    def _compute(self) -> float:
        return ece_from_bins(self.count, self.conf_sum, self.correct_sum)


@METRICS.register("mce", meta=MetricMeta("maximum calibration error, 15 equal-width bins", "Naeini et al. 2015"))
class MCE(_TopLabelBinned):
    """Streaming MCE: the same O(bins) state as ECE, reduced by max over non-empty bins."""

    def _compute(self) -> float:
        return mce_from_bins(self.count, self.conf_sum, self.correct_sum)


@METRICS.register(
    "ece_adaptive",
    meta=MetricMeta("ECE with 15 equal-mass bins", "Nixon et al. 2019, arXiv:1904.01685"),
)
class AdaptiveECE(Metric):
    confidences: list[torch.Tensor]
    corrects: list[torch.Tensor]

    """Equal-mass-bin ECE; keeps every (confidence, correct) pair because bin edges are data-dependent."""


    def __init__(self, n_bins: int = DEFAULT_BINS) -> None:
        super().__init__()
        _check_bins(n_bins)
        self.n_bins = n_bins
        self.add_state("confidences", lambda: torch.empty(0, dtype=torch.float64), "cat")
        self.add_state("corrects", lambda: torch.empty(0, dtype=torch.float64), "cat")

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        conf, pred = logits.detach().double().softmax(1).max(1)
        self.confidences.append(conf.cpu())
        self.corrects.append((pred == targets).double().cpu())
        self._touch()

    def _compute(self) -> float:
        return equal_mass_ece_from_scores(self.cat_state("confidences"), self.cat_state("corrects"), self.n_bins)


@METRICS.register(
    "classwise_ece",
    meta=MetricMeta("class-wise ECE, 15 equal-width bins", "Kull et al. 2019, arXiv:1910.12656"),
)
class ClasswiseECE(Metric):
    count: torch.Tensor
    prob_sum: torch.Tensor
    label_sum: torch.Tensor

    """Streaming class-wise ECE: K×bins state (count, probability sum, label sum); K set on first update."""


    def __init__(self, n_bins: int = DEFAULT_BINS) -> None:
        super().__init__()
        _check_bins(n_bins)
        self.n_bins = n_bins
        for name in ("count", "prob_sum", "label_sum"):
            self.add_state(name, lambda: torch.zeros(0, n_bins, dtype=torch.float64), "sum")

    def update(self, logits: torch.Tensor, targets: torch.Tensor) -> None:
        stats = classwise_bin_stats(logits.detach().double().softmax(1), targets, self.n_bins)
        for name, value in zip(("count", "prob_sum", "label_sum"), stats, strict=True):
            mine = getattr(self, name)
            setattr(self, name, value if mine.numel() == 0 else mine + value)
        self._touch()

    def merge(self, other: Metric) -> Metric:
        if isinstance(other, ClasswiseECE) and (self.count.numel() == 0 or other.count.numel() == 0):
            if self.count.numel() == 0:  # an empty shard has no class dimension yet
                self.count, self.prob_sum, self.label_sum = other.count, other.prob_sum, other.label_sum
            self._touch()
            return self
        return super().merge(other)

    def _compute(self) -> float:
        return classwise_ece_from_bins(self.count, self.prob_sum, self.label_sum)
