"""The attack contract, the ``ATTACKS`` registry, and the shared wrapper every attack runs under.

An attack is ``fn(model, x, y, threat, rng) -> (x_adv, broken)`` on a batch whose points are all
classified correctly; :func:`run_attack` adds what every attack needs (contract 3): caller's mode
and ``requires_grad`` restored in ``finally``, no gradient reaching the parameters, batching,
attacking only points not yet broken, and an asserted threat-set check on the output.

Randomness is per image (design contract 6): ``rng`` is an ``ImageStreams`` with one stream per
image of ``x``, and everything random an attack does to image i (random starts, restarts, Square's
windows) is drawn from stream i, so an image's result does not depend on which images share its
batch or on the batch size. A ``torch.Generator`` is still accepted by the entry points
(``ImageStreams.from_generator``: the keys are drawn from it, so the result then depends on the
batch the generator was used for).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from shiftlab.attacks.threat import Norm, Randomness, ThreatModel, norm_ops
from shiftlab.core.registry import Registry
from shiftlab.core.seeding import ImageStreams

AttackFn = Callable[[nn.Module, torch.Tensor, torch.Tensor, ThreatModel, Randomness],
                    tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True, slots=True)
class AttackMeta:
    """Registry metadata of an attack."""

    description: str
    paper: str
    arxiv: str = ""
    norms: tuple[Norm, ...] = (Norm.LINF, Norm.L2)
    targeted: bool = False
    black_box: bool = False


ATTACKS: Registry[AttackFn, AttackMeta] = Registry("attack")


def image_streams(rng: Randomness, n: int) -> ImageStreams:
    """``rng`` as one stream per image of a batch of ``n`` (a generator's draws become the keys)."""
    if isinstance(rng, ImageStreams):
        if len(rng) != n:
            raise ValueError(f"{len(rng)} image streams for a batch of {n} images")
        return rng
    return ImageStreams.from_generator(rng, n)


@contextlib.contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[nn.Module]:
    """``requires_grad=False`` on every parameter inside the block; each flag restored in ``finally``."""
    grads = [(p, p.requires_grad) for p in model.parameters()]
    try:
        for p, _ in grads:
            p.requires_grad_(False)
        yield model
    finally:
        for p, flag in grads:
            p.requires_grad_(flag)


@contextlib.contextmanager
def channels_last(model: nn.Module, probe: torch.Tensor | None) -> Iterator[bool]:
    """4-D parameters and buffers (conv weights) in channels-last layout inside the block.

    Convolutions and pooling on CPU run about 1.5× faster in this layout at attack batch sizes (the
    forward passes are nearly all an attack's time). The layout is kept only if the model gives the
    same logits on ``probe`` (one image) both ways; a model that cannot run in it (``.view`` on a
    channels-last activation) or no probe leaves the layout alone. Each tensor's original storage is
    put back in ``finally``, so the caller sees the same parameters afterwards. Yields whether the
    layout is in use.
    """
    fmt = torch.channels_last
    swapped = [(t, t.data) for t in [*model.parameters(), *model.buffers()]
               if t.dim() == 4 and not t.is_contiguous(memory_format=fmt)] if probe is not None else []
    try:
        if swapped:
            with torch.no_grad():
                ref = model(probe)
                for t, data in swapped:
                    t.data = data.contiguous(memory_format=fmt)
                try:
                    same = bool(torch.allclose(model(probe), ref, rtol=1e-4, atol=1e-5))
                except RuntimeError:
                    same = False
            if not same:
                for t, data in swapped:
                    t.data = data
                swapped = []
        yield bool(swapped)
    finally:
        for t, data in swapped:
            t.data = data


@contextlib.contextmanager
def attack_mode(model: nn.Module, probe: torch.Tensor | None = None) -> Iterator[nn.Module]:
    """Eval mode and frozen parameters (channels-last layout if ``probe`` images allow it, see
    ``channels_last``); the caller's state restored in ``finally``."""
    modes = [(m, m.training) for m in model.modules()]
    try:
        with frozen_parameters(model):
            model.eval()
            with channels_last(model, probe[:1] if probe is not None and len(probe) else None):
                yield model
    finally:
        for m, mode in modes:
            m.training = mode


def logits_and_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable[..., torch.Tensor],
                    target: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logits, per-sample loss, d loss / d x) without touching any parameter's ``.grad``."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = loss_fn(logits, y, target)
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return logits.detach(), loss.detach(), grad.detach()


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted classes, batched."""
    return torch.cat([model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def assert_in_threat_set(x_adv: torch.Tensor, x: torch.Tensor, threat: ThreatModel, tol: float = 1e-6) -> None:
    """Fail loudly (not a log line) if an attack left the eps-ball or the image box."""
    dist = norm_ops(threat).norm_of(x_adv - x)
    worst = float(dist.max()) if dist.numel() else 0.0
    assert worst <= threat.eps + tol, f"attack left the {threat.norm.value} ball: {worst} > eps={threat.eps}"
    assert bool(((x_adv >= 0) & (x_adv <= 1)).all()), "attack left the image box [0, 1]"


def run_attack(name: str, model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel,
               rng: Randomness, batch_size: int = 256,
               active: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Run registered attack ``name`` on the points of ``x`` still classified correctly.

    Args:
        name: attack name in ``ATTACKS``.
        model: classifier taking N×C×H×W images in [0, 1]; its mode and ``requires_grad`` are restored.
        x, y: images in [0, 1] and int64 labels.
        threat: the threat model and budgets.
        rng: one random stream per image of ``x`` (``ImageStreams``; e.g. ``ImageStreams.for_images(seed,
            task_key, dataset_indices)``), so the result does not depend on ``batch_size`` or on the
            other images of ``x``; a ``torch.Generator`` is converted with ``ImageStreams.from_generator``.
        batch_size: points per attack batch (memory only: never changes which randomness a point sees).
        active: boolean mask of points to attack (default: those the model classifies correctly).

    Returns:
        (x_adv, broken): adversarial images (``x`` where nothing was found) and a boolean mask of
        points misclassified at ``x_adv`` that were attacked here.
    """
    meta = ATTACKS.meta(name)
    fn = ATTACKS.get(name)
    if threat.norm not in meta.norms:
        from shiftlab.core.errors import UserError

        raise UserError(f"attack {name!r} supports norms {[n.value for n in meta.norms]}, not {threat.norm.value}")
    streams = image_streams(rng, len(x))
    x_adv = x.clone()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    with attack_mode(model, x):
        if active is None:
            active = predict(model, x, batch_size) == y
        idx = active.nonzero().flatten()
        for start in range(0, len(idx), batch_size):
            sel = idx[start:start + batch_size]
            xa, br = fn(model, x[sel], y[sel], threat, streams.subset(sel))
            x_adv[sel] = torch.where(br.view(-1, *([1] * (x.dim() - 1))), xa, x[sel])
            broken[sel] = br
        if len(idx):
            br_check = predict(model, x_adv[idx], batch_size) != y[idx]
            broken[idx] = broken[idx] & br_check
    assert_in_threat_set(x_adv, x, threat)
    return x_adv, broken
