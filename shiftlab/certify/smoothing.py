"""The smoothed classifier g(x) = argmax_c P(f(x + δ) = c), δ ~ N(0, σ² I), of Cohen, Rosenfeld &
Kolter 2019, "Certified Adversarial Robustness via Randomized Smoothing" (arXiv:1902.02918).

``Smoothed(model, sigma)`` counts the base classifier's votes under noise and decides with the pure
functions of ``certify/statistics.py``: PREDICT (abstain unless the binomial test rejects at alpha)
and CERTIFY (n0 selection samples choose ĉ_A, n estimation samples bound p_A with Clopper–Pearson,
radius σ·Φ⁻¹(p_A)).

How the votes are counted:
- Noise is added to the [0, 1] image without clipping, as in the paper (the model normalises inside).
- Each image's noise comes from its own generator (``certify/noise.py``) in chunks of a size fixed by
  the image shape, and every forward pass holds one chunk of one image: an image's counts do not
  depend on its batch or block, and memory is bounded by one chunk whatever n is (n = 100,000 runs in
  the memory of n = 1,000).
- The base classifier runs as a no-grad copy in eval mode with batch norm folded into the preceding
  convolutions (``torch.fx``) and channels-last weights, each kept only if its logits on the first
  image agree with the model's; the caller's model is never modified.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from shiftlab.certify.noise import NoiseSeeds, noise_chunk
from shiftlab.certify.statistics import Certificates, certify_from_counts, predict_from_counts

log = logging.getLogger(__name__)

AGREE_RTOL, AGREE_ATOL = 1e-4, 1e-5


def _agrees(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.float(), b.float(), rtol=AGREE_RTOL, atol=AGREE_ATOL))


def inference_copy(model: nn.Module, probe: torch.Tensor) -> nn.Module:
    """A frozen eval-mode copy of ``model`` for counting votes, as fast as the checks allow.

    Batch norm is folded into the preceding convolution with ``torch.fx`` and 4-D weights are put in
    channels-last layout; each step is kept only if the copy's logits on ``probe`` agree with the model's
    (rtol 1e-4, atol 1e-5). A model that cannot be traced keeps its own graph. ``model`` is untouched
    (its modes are restored after the reference forward).
    """
    modes = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.inference_mode():
            reference = model(probe)
    finally:
        for m, mode in modes:
            m.training = mode
    base = copy.deepcopy(model).eval()
    for p in base.parameters():
        p.requires_grad_(False)
    with torch.inference_mode():
        try:
            from torch.fx.experimental.optimization import fuse

            fused = fuse(base)
            if _agrees(fused(probe), reference):
                base = fused
        except Exception as exc:  # noqa: BLE001 - any model fx cannot trace keeps its own graph
            log.debug("batch-norm folding skipped: %s", exc)
        if probe.dim() == 4:
            base = base.to(memory_format=torch.channels_last)
            try:
                fast = _agrees(base(probe.contiguous(memory_format=torch.channels_last)), reference)
            except RuntimeError:
                fast = False
            if not fast:
                base = base.to(memory_format=torch.contiguous_format)
    return base


@dataclass
class Smoothed:
    """A smoothed classifier: PREDICT and CERTIFY (Cohen et al. 2019) over a base ``model``.

    Args:
        model: base classifier on N×C×H×W images in [0, 1] (logits out); never modified.
        sigma: standard deviation of the Gaussian noise, in [0, 1] pixel units.
        chunk: noisy copies per forward pass (default: ``noise_chunk`` of the image shape). It
            bounds memory; results depend on it only through the model's last-bit arithmetic.
        fast: count with :func:`inference_copy` (False: with ``model`` itself in eval mode).

    Example:
        >>> smoothed = Smoothed(model, 0.25)  # doctest: +SKIP
        >>> cert = smoothed.certify(x, 100, 10_000, 0.001, NoiseSeeds.for_images(0, "demo", range(len(x))))  # doctest: +SKIP
        >>> cert.prediction, cert.radius  # doctest: +SKIP
    """

    model: nn.Module
    sigma: float
    chunk: int | None = None
    fast: bool = True
    _prepared: tuple[str, nn.Module] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.sigma, int | float) and math.isfinite(self.sigma) and self.sigma > 0):
            raise ValueError(f"sigma must be a positive number, got {self.sigma!r}")
        if self.chunk is not None and self.chunk < 1:
            raise ValueError(f"chunk must be a positive number of samples, got {self.chunk}")

    def _base(self, x: torch.Tensor) -> nn.Module:
        if not self.fast:
            return self.model
        device = str(x.device)
        if self._prepared is None or self._prepared[0] != device:
            self._prepared = (device, inference_copy(self.model, x[:1]))
        return self._prepared[1]

    def counts(self, x: torch.Tensor, n: int, noise: NoiseSeeds, purpose: str) -> torch.Tensor:
        """Votes of the base classifier on ``n`` noisy copies of each image (N×K int64, on the CPU).

        Shape: x N×C×H×W in [0, 1]; ``noise`` one key per image.
        """
        if len(noise) != len(x):
            raise ValueError(f"{len(noise)} noise keys for {len(x)} images")
        if n < 1 or len(x) == 0:
            raise ValueError(f"counting needs n >= 1 and at least one image, got n={n} and {len(x)} images")
        base = self._base(x)
        chunk = self.chunk or noise_chunk(x.shape[1:])
        layout = torch.channels_last if self.fast and x.dim() == 4 else torch.contiguous_format
        modes = [(m, m.training) for m in self.model.modules()]
        rows: list[torch.Tensor] = []
        try:
            self.model.eval()
            with torch.inference_mode():
                for j in range(len(x)):
                    generator = noise.generator(j, purpose, x.device)
                    votes: torch.Tensor | None = None
                    done = 0
                    while done < n:
                        m = min(chunk, n - done)
                        z = torch.randn((m, *x.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)
                        batch = z.mul_(self.sigma).add_(x[j]).contiguous(memory_format=layout)
                        logits = base(batch)
                        found = torch.bincount(logits.argmax(1), minlength=logits.shape[1])
                        votes = found if votes is None else votes + found
                        done += m
                    assert votes is not None
                    rows.append(votes.cpu())
        finally:
            for module, mode in modes:
                module.training = mode
        return torch.stack(rows).to(torch.int64)

    def predict(self, x: torch.Tensor, n: int, alpha: float, noise: NoiseSeeds) -> torch.Tensor:
        """PREDICT: g(x) per image, or ``ABSTAIN`` (-1) when the binomial test fails at ``alpha`` (int64, N)."""
        _check_alpha(alpha)
        if len(x) == 0:
            return torch.zeros(0, dtype=torch.int64)
        return predict_from_counts(self.counts(x, n, noise, "predict"), alpha)

    def certify(self, x: torch.Tensor, n0: int, n: int, alpha: float, noise: NoiseSeeds) -> Certificates:
        """CERTIFY: the prediction and certified L2 radius per image from ``n0`` selection and ``n``
        estimation samples, failing with probability at most ``alpha``."""
        _check_alpha(alpha)
        if len(x) == 0:
            empty = torch.zeros(0, dtype=torch.float64)
            return Certificates(torch.zeros(0, dtype=torch.int64), empty, empty, torch.zeros(0, dtype=torch.int64))
        selection = self.counts(x, n0, noise, "selection")
        estimation = self.counts(x, n, noise, "estimation")
        return certify_from_counts(selection, estimation, alpha, self.sigma)


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
