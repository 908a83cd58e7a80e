"""The statistics of randomized smoothing: Cohen, Rosenfeld & Kolter 2019, "Certified Adversarial
Robustness via Randomized Smoothing" (arXiv:1902.02918), Theorem 1 and Algorithms PREDICT / CERTIFY.

Pure functions of class counts (N×K int64 tensors, one row per image), so the decisions are tested
on crafted counts without a model:

- PREDICT returns the top class when the two-sided binomial test of ``n_A`` against ``n_A + n_B``
  successes at p = 1/2 rejects at level alpha (the top two counts), and abstains otherwise; it then
  returns a class other than g(x) with probability at most alpha (the paper's Theorem 2).
- CERTIFY picks the guess ĉ_A from the selection counts, bounds p_A from below with the one-sided
  (1 − alpha) Clopper–Pearson bound on ``count[ĉ_A]`` of the estimation counts, and returns ĉ_A
  with the L2 radius ``sigma · Φ⁻¹(p_A)``, or abstains when the bound is not above 1/2.

The Clopper–Pearson bound is ``Beta(alpha; k, n − k + 1)``'s quantile (Clopper & Pearson 1934),
0 when k = 0; scipy's beta quantile is exact to double precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

ABSTAIN = -1
"""The class PREDICT and CERTIFY return when they abstain."""


def clopper_pearson_lower(successes: torch.Tensor, trials: int | torch.Tensor, alpha: float) -> torch.Tensor:
    """One-sided (1 − alpha) lower confidence bound on a binomial proportion (Clopper & Pearson 1934).

    Args:
        successes: counts k (any shape, integer).
        trials: n (one value or the shape of ``successes``); 0 ≤ k ≤ n.
        alpha: the bound fails with probability at most alpha.

    Returns:
        float64 tensor of the bounds, the shape of ``successes``: ``Beta.ppf(alpha, k, n − k + 1)``, 0 where k = 0.
    """
    k = successes.detach().cpu().to(torch.float64).numpy()
    n = torch.as_tensor(trials).detach().cpu().to(torch.float64).numpy()
    n = np.broadcast_to(n, k.shape)
    if np.any(k < 0) or np.any(k > n):
        raise ValueError("successes must lie in [0, trials]")
    safe = np.where(k > 0, k, 1.0)
    bound = np.where(k > 0, stats.beta.ppf(alpha, safe, n - k + 1.0), 0.0)
    return torch.from_numpy(np.ascontiguousarray(bound, dtype=np.float64))


def binomial_test_half(top: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Two-sided p-value of ``top`` successes in ``top + second`` trials against p = 1/2 (float64).

    For p = 1/2 the distribution is symmetric, so the p-value is ``min(1, 2·P(X ≤ min(top, second)))``
    (scipy's ``binomtest`` gives the same); 1 when there are no trials.
    """
    a = top.detach().cpu().to(torch.float64).numpy()
    b = second.detach().cpu().to(torch.float64).numpy()
    total = a + b
    tail = stats.binom.cdf(np.minimum(a, b), np.maximum(total, 1.0), 0.5)
    p = np.where(total > 0, np.minimum(1.0, 2.0 * tail), 1.0)
    return torch.from_numpy(np.ascontiguousarray(p, dtype=np.float64))


def top_two(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top class, its count, the second-largest count) per row of N×K counts; a tie gives the
    lowest class index (the test then sees equal counts)."""
    values = torch.topk(counts, k=min(2, counts.shape[1]), dim=1, sorted=True).values
    top = counts.argmax(1)
    second = values[:, 1] if counts.shape[1] > 1 else torch.zeros_like(values[:, 0])
    return top, values[:, 0], second


def predict_from_counts(counts: torch.Tensor, alpha: float) -> torch.Tensor:
    """PREDICT's decision (Cohen et al. 2019, Algorithm PREDICT): the top class, or ``ABSTAIN`` when the
    binomial test of the top two counts does not reject at ``alpha``. Shape: N×K → N (int64)."""
    top, n_a, n_b = top_two(counts)
    p = binomial_test_half(n_a, n_b).to(counts.device)
    return torch.where(p <= alpha, top, torch.full_like(top, ABSTAIN))


@dataclass(frozen=True)
class Certificates:
    """CERTIFY's output per image.

    Attributes:
        prediction: ĉ_A, or ``ABSTAIN`` (int64, N).
        radius: certified L2 radius ``sigma · Φ⁻¹(p_A)``, 0 where abstained (float64, N).
        p_lower: the Clopper–Pearson lower bound on p_A (float64, N).
        count: n_A, the estimation samples that voted for ĉ_A (int64, N).
    """

    prediction: torch.Tensor
    radius: torch.Tensor
    p_lower: torch.Tensor
    count: torch.Tensor

    def __len__(self) -> int:
        return int(self.prediction.numel())

    @property
    def abstained(self) -> torch.Tensor:
        return self.prediction == ABSTAIN


def certify_from_counts(selection: torch.Tensor, estimation: torch.Tensor, alpha: float,
                        sigma: float) -> Certificates:
    """CERTIFY's decision (Cohen et al. 2019, Algorithm CERTIFY) from the two sets of counts.

    Args:
        selection: N×K counts of the n0 selection samples (they only choose ĉ_A).
        estimation: N×K counts of the n estimation samples (they bound p_A).
        alpha: failure probability of the certificate.
        sigma: noise level of the smoothing distribution N(0, sigma² I).
    """
    guess = selection.argmax(1)
    n = estimation.sum(1)
    n_a = estimation.gather(1, guess.view(-1, 1)).squeeze(1)
    p_lower = clopper_pearson_lower(n_a, n, alpha)
    certified = p_lower > 0.5
    z = torch.from_numpy(stats.norm.ppf(p_lower.clamp(0.5, 1.0).numpy()))
    radius = torch.where(certified, sigma * z, torch.zeros_like(z))
    prediction = torch.where(certified.to(guess.device), guess, torch.full_like(guess, ABSTAIN))
    return Certificates(prediction.cpu(), radius, p_lower, n_a.cpu())
