"""Threat models and the per-norm geometry every attack shares (``NormOps``).

A :class:`ThreatModel` says what the adversary may do (norm ball of radius ``eps`` intersected
with the image box [0, 1]) and how much compute each attack gets. ``norm_ops(threat)`` resolves
it to a :class:`NormOps`: the only place where a perturbation is sampled, stepped, projected or
clipped (STYLE rule 4). Random starts draw from per-image streams (``ImageStreams``: an image's start
does not depend on its batch, design contract 6) or, for adversarial training, from a
``torch.Generator`` per step.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import torch

from shiftlab.core.errors import UserError
from shiftlab.core.seeding import ImageStreams

Randomness = ImageStreams | torch.Generator
"""Where random starts come from: one stream per image (evaluation), or one generator for the batch
(adversarial training, whose randomness is per step)."""


class Norm(enum.Enum):
    """The norm of the threat model; strings become a ``Norm`` only at the API edge."""

    LINF = "linf"
    L2 = "l2"

    @classmethod
    def parse(cls, value: str | Norm) -> Norm:
        if isinstance(value, Norm):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise UserError(f"unknown norm {value!r}; use one of: linf, l2") from None


@dataclass(frozen=True, slots=True)
class ThreatModel:
    """The adversary: an ``norm`` ball of radius ``eps`` ∩ [0, 1], and per-attack budgets.

    Args:
        norm: ``Norm.LINF`` or ``Norm.L2`` (a string such as "linf" is accepted and converted).
        eps: radius of the ball, in [0, 1] pixel units (e.g. 8/255 or 0.1 for Linf, 0.5 for L2).
        steps: iterations of the gradient attacks (PGD, APGD, FAB); default 100.
        restarts: random restarts of PGD / APGD / FAB; default 1.
        n_queries: model queries of the black-box Square attack; default 5000.
        n_target_classes: target classes tried by the targeted attacks (APGD-T, FAB-T); default 9.
        step_size: fixed step of PGD/FGSM-style attacks; None means ``2.5 * eps / steps``
            (Madry et al. 2018).
    """

    norm: Norm
    eps: float
    steps: int = 100
    restarts: int = 1
    n_queries: int = 5000
    n_target_classes: int = 9
    step_size: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "norm", Norm.parse(self.norm))
        object.__setattr__(self, "eps", float(self.eps))
        if not math.isfinite(self.eps) or self.eps <= 0:
            raise UserError(f"eps must be a positive number, got {self.eps}")
        if self.norm is Norm.LINF and self.eps > 1:
            raise UserError(f"a linf eps above 1 is meaningless for [0, 1] images, got {self.eps}; "
                            "write e.g. 8/255 = 0.0314")
        for name in ("steps", "restarts", "n_queries", "n_target_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if self.step_size is not None and not self.step_size > 0:
            raise UserError(f"step_size must be positive, got {self.step_size}")

    @property
    def alpha(self) -> float:
        """The fixed step of PGD-style attacks."""
        return self.step_size if self.step_size is not None else 2.5 * self.eps / self.steps


def _per_sample(v: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor | float:
    """Broadcast a per-sample tensor of shape (N,) against N×C×H×W."""
    if isinstance(v, torch.Tensor):
        return v.view(-1, *([1] * (x.dim() - 1)))
    return v


def _check_streams(x: torch.Tensor, rng: ImageStreams) -> None:
    if len(rng) != len(x):
        raise ValueError(f"{len(rng)} image streams for a batch of {len(x)} images")


def _uniform(x: torch.Tensor, rng: Randomness, purpose: object) -> torch.Tensor:
    """U[0, 1) noise shaped like ``x``: per image from its stream, or from the batch's generator."""
    if isinstance(rng, ImageStreams):
        _check_streams(x, rng)
        return rng.rand(purpose, tuple(x.shape[1:]), device=x.device, dtype=x.dtype)
    return torch.rand(x.shape, generator=rng, device=x.device, dtype=x.dtype)


def _normal(x: torch.Tensor, rng: Randomness, purpose: object) -> torch.Tensor:
    """N(0, 1) noise shaped like ``x``: per image from its stream, or from the batch's generator."""
    if isinstance(rng, ImageStreams):
        _check_streams(x, rng)
        return rng.randn(purpose, tuple(x.shape[1:]), device=x.device, dtype=x.dtype)
    return torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)


class NormOps:
    """Geometry of one norm: random start, steepest-ascent step, projection onto ball ∩ [0, 1].

    Subclasses implement the norm-specific parts; clipping to [0, 1] lives here only.
    """

    norm: Norm

    def __init__(self, eps: float) -> None:
        self.eps = eps

    def norm_of(self, delta: torch.Tensor) -> torch.Tensor:
        """Per-sample norm of a perturbation, shape (N,)."""
        raise NotImplementedError

    def sample_noise(self, x: torch.Tensor, rng: Randomness, purpose: object = "start") -> torch.Tensor:
        """The noise a random start around ``x`` is made of (uniform for Linf, Gaussian for L2)."""
        raise NotImplementedError

    def start_from_noise(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The random start built from ``sample_noise`` output."""
        raise NotImplementedError

    def random_init(self, x: torch.Tensor, rng: Randomness, purpose: object = "start") -> torch.Tensor:
        """A random point of the threat set around ``x``.

        ``rng``: ``ImageStreams`` with one stream per image of ``x`` (image i's start depends only on
        its stream and ``purpose``, e.g. ``("restart", 2)``), or a ``torch.Generator`` drawing for the
        whole batch (``purpose`` is then unused).
        """
        return self.start_from_noise(x, self.sample_noise(x, rng, purpose))

    def gaussian_init(self, x: torch.Tensor, rng: Randomness, sigma: float, purpose: object = "start") -> torch.Tensor:
        """``x + sigma·N(0, I)`` projected onto the threat set (TRADES' start uses sigma = 0.001)."""
        return self.project(x + sigma * _normal(x, rng, purpose), x)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: torch.Tensor | float) -> torch.Tensor:
        """Steepest ascent step of length ``step_size`` (per-sample tensor or float) along ``grad``."""
        raise NotImplementedError

    def project_ball(self, delta: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def project(self, x_adv: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Project onto the eps-ball around ``x`` intersected with [0, 1].

        Clipping to the box after the ball projection stays inside the ball, because ``x`` is in
        [0, 1] and clipping only shrinks each coordinate of the perturbation.
        """
        return torch.clamp(x + self.project_ball(x_adv - x), 0.0, 1.0)

    def clip_box(self, x: torch.Tensor) -> torch.Tensor:
        """Clip to the image box [0, 1] (for attacks that build a point before projecting)."""
        return torch.clamp(x, 0.0, 1.0)

    def breakpoints(self, w_abs: torch.Tensor, room: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For the hyperplane projection: (t_i, k_i) with coordinate i moving by ``min(t*k_i, room_i)``."""
        raise NotImplementedError

    def hyperplane_step(self, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Minimal-norm ``d`` with ``w·(x + d) = b`` and ``x + d`` in [0, 1] (FAB's projection).

        Exact and batched: after orienting the problem so the required change ``r = b - w·x`` is
        non-negative, coordinate i moves by ``sign(w_i) * min(t * k_i, room_i)`` where ``room_i``
        is its distance to the box in the helpful direction; the attained change is a concave
        piecewise-linear function of ``t``, solved by sorting its breakpoints. If the hyperplane
        cannot be reached inside the box, every coordinate moves to its box edge (as in
        Croce & Hein 2020, arXiv:1907.02044). Shapes: x, w N×D; b (N,).
        """
        r = b - (w * x).sum(1)
        s = torch.where(r >= 0, 1.0, -1.0).to(x.dtype)
        ws = w * s[:, None]
        r = r.abs()
        direction = torch.sign(ws)
        room = torch.where(ws > 0, 1.0 - x, x)
        room = torch.where(ws == 0, torch.zeros_like(room), room)
        w_abs = ws.abs()
        t_i, k_i = self.breakpoints(w_abs, room)
        order = torch.argsort(t_i, dim=1)
        t_sorted = t_i.gather(1, order)
        full = (w_abs * room).gather(1, order)  # contribution once saturated
        slope = (w_abs * k_i).gather(1, order)  # contribution per unit t before saturation
        done_before = torch.cumsum(full, 1) - full  # sum over saturated coordinates (t_j < t_i)
        slope_after = torch.flip(torch.cumsum(torch.flip(slope, [1]), 1), [1])  # t_j >= t_i
        attained = done_before + t_sorted * slope_after
        reach = attained >= r[:, None]
        feasible = reach.any(1)
        first = torch.where(feasible, reach.float().argmax(1), torch.full_like(r, t_i.shape[1] - 1).long())
        a = done_before.gather(1, first[:, None]).squeeze(1)
        sl = slope_after.gather(1, first[:, None]).squeeze(1)
        t = torch.where(feasible, (r - a) / sl.clamp_min(1e-30), t_sorted[:, -1])
        t = torch.where(r == 0, torch.zeros_like(t), t)
        move = torch.minimum(t[:, None] * k_i, room)
        return direction * move


class LinfOps(NormOps):
    """L-infinity geometry: sign steps, coordinate-wise clipping to [x - eps, x + eps]."""

    norm = Norm.LINF

    def norm_of(self, delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).abs().amax(1)

    def sample_noise(self, x: torch.Tensor, rng: Randomness, purpose: object = "start") -> torch.Tensor:
        return _uniform(x, rng, purpose)

    def start_from_noise(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.project(x + self.eps * (2 * noise - 1), x)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: torch.Tensor | float) -> torch.Tensor:
        return x_adv + _per_sample(step_size, x_adv) * torch.sign(grad)

    def project_ball(self, delta: torch.Tensor) -> torch.Tensor:
        return torch.clamp(delta, -self.eps, self.eps)

    def breakpoints(self, w_abs: torch.Tensor, room: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return room, torch.ones_like(room)


class L2Ops(NormOps):
    """L2 geometry: normalised-gradient steps, radial projection onto the eps-ball."""

    norm = Norm.L2

    def norm_of(self, delta: torch.Tensor) -> torch.Tensor:
        return delta.flatten(1).norm(dim=1)

    def _unit(self, v: torch.Tensor) -> torch.Tensor:
        return v / (v.flatten(1).norm(dim=1).view(-1, *([1] * (v.dim() - 1))) + 1e-12)

    def sample_noise(self, x: torch.Tensor, rng: Randomness, purpose: object = "start") -> torch.Tensor:
        return _normal(x, rng, purpose)

    def start_from_noise(self, x: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        return self.project(x + self.eps * self._unit(noise), x)

    def step(self, x_adv: torch.Tensor, grad: torch.Tensor, step_size: torch.Tensor | float) -> torch.Tensor:
        return x_adv + _per_sample(step_size, x_adv) * self._unit(grad)

    def project_ball(self, delta: torch.Tensor) -> torch.Tensor:
        n = delta.flatten(1).norm(dim=1).view(-1, *([1] * (delta.dim() - 1)))
        return delta * torch.clamp(self.eps / (n + 1e-12), max=1.0)

    def breakpoints(self, w_abs: torch.Tensor, room: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # KKT: d_i = clip(t * w_i, box); coordinate saturates at t = room_i / |w_i|.
        t = torch.where(w_abs > 0, room / w_abs.clamp_min(1e-30), torch.full_like(room, 1e30))
        return t, w_abs


def norm_ops(threat: ThreatModel) -> NormOps:
    """The ``NormOps`` of a threat model."""
    return {Norm.LINF: LinfOps, Norm.L2: L2Ops}[threat.norm](threat.eps)
