"""Training losses and consistency terms.

- ``mixed_cross_entropy``: ``lam·CE(y_a) + (1 − lam)·CE(y_b)`` for mixup/CutMix (Zhang et al. 2018).
- ``jensen_shannon``: the AugMix consistency ``(1/K) Σ_k KL(p_k ‖ M)``, ``M = (1/K) Σ_k p_k``
  (Hendrycks et al. 2020, arXiv:1912.02781), with M clamped at 1e-7 as in the reference.
- ``trades_kl``: ``KL(p_clean ‖ p_adv)`` averaged over the batch (Zhang et al. 2019, arXiv:1901.08573).
- ``noise_consistency``: KL of each noisy copy's prediction to their mean plus the mean's entropy
  (Jeong & Shin 2020, arXiv:2006.04062); ``soft_target_kl`` for SmoothMix's soft labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from shiftlab.attacks.losses import kl_to_clean


def mixed_cross_entropy(logits: torch.Tensor, y_a: torch.Tensor, y_b: torch.Tensor, lam: torch.Tensor,
                        label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-sample-weighted mix of two cross-entropies, averaged over the batch."""
    ce_a = F.cross_entropy(logits, y_a, reduction="none", label_smoothing=label_smoothing)
    ce_b = F.cross_entropy(logits, y_b, reduction="none", label_smoothing=label_smoothing)
    return (lam * ce_a + (1 - lam) * ce_b).mean()


def jensen_shannon(*logits: torch.Tensor) -> torch.Tensor:
    """Generalised Jensen–Shannon divergence of the softmaxes of ``logits`` (each N×K), batch mean."""
    return jensen_shannon_probs([F.softmax(z, dim=1) for z in logits])


def trades_kl(adv_logits: torch.Tensor, clean_logits: torch.Tensor) -> torch.Tensor:
    """``KL(softmax(clean) ‖ softmax(adv))`` summed over classes, averaged over the batch."""
    return kl_to_clean(adv_logits, None, F.softmax(clean_logits, dim=1)).mean()


def noise_consistency(logits: Sequence[torch.Tensor], lam: float, eta: float = 0.0) -> torch.Tensor:
    """Consistency of predictions over m noisy copies of a batch (Jeong & Shin 2020, "Consistency
    Regularization for Certified Robustness of Smoothed Classifiers", arXiv:2006.04062):
    ``lam·(1/m) Σ_i KL(p̄ ‖ p_i) + eta·H(p̄)`` with p̄ the mean softmax (not detached, as in the
    authors' code), batch mean. ``eta = 0`` is the KL-only form FourierMix uses."""
    probs = [F.softmax(z, dim=1) for z in logits]
    mean = torch.stack(probs).mean(0)
    kl = torch.stack([F.kl_div(F.log_softmax(z, dim=1), mean, reduction="none").sum(1) for z in logits]).mean(0)
    entropy = -(mean * mean.clamp_min(1e-20).log()).sum(1)
    return (lam * kl + eta * entropy).mean()


def jensen_shannon_probs(probs: Sequence[torch.Tensor]) -> torch.Tensor:
    """``jensen_shannon`` on probabilities (each N×K) instead of logits, batch mean."""
    log_mixture = torch.clamp(torch.stack(list(probs)).mean(0), 1e-7, 1.0).log()
    return sum(F.kl_div(log_mixture, p, reduction="batchmean") for p in probs) / len(probs)  # type: ignore[return-value]


def soft_target_kl(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample ``KL(target ‖ softmax(logits))`` against soft targets (N×K), e.g. SmoothMix's mixed labels."""
    return F.kl_div(F.log_softmax(logits, dim=1), target, reduction="none").sum(1)
