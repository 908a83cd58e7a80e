"""Target classes of the targeted attacks (APGD-T, FAB-T), batched across targets.

Croce & Hein 2020 (arXiv:2003.01690) run a targeted attack towards each of the
``n_target_classes`` highest non-true classes in turn, each on the points still robust. Run that way,
the few points left after APGD-CE cost 9 × 100 iterations of a nearly empty batch. Here each still
robust image is replicated once per target class and the copies are attacked in one batch, the
target class being per-sample context; when any copy of an image is misclassified, all its copies
leave the batch. Every image still tries every target class unless it is already broken, as in the
sequential schedule. To bound the work spent on images that the first target already breaks, the
ranks are taken in waves of at most ``max_pairs`` (image, target) pairs: with many robust points
(an adversarially trained model) the schedule degrades gracefully to the sequential one. Each
(image, target) pair gets its own seed, so its random start is the same whatever the schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

MAX_PAIRS = 64
"""(image, target) pairs per wave; ranks are batched while ``robust points × ranks`` fits. Small on
purpose: batching saves per-iteration overhead on a nearly empty batch, but a copy whose image a
lower rank breaks at iteration k costs k iterations that the sequential schedule never spends
(measured on CPU: 3 robust points × 9 targets, 2× faster batched; 57 points × 3 targets, 1.2–1.5×
slower batched)."""

PairAttack = Callable[[torch.Tensor, torch.Tensor, list[int]], tuple[torch.Tensor, torch.Tensor]]
"""attack(owner, target, seeds) -> (x_adv, broken) for the pairs (x[owner[j]], target[j]), each
pair's randomness drawn from ``seeds[j]``."""


def target_ranks(logits: torch.Tensor, rank: int) -> torch.Tensor:
    """The class with the ``rank``-th largest logit (rank 2 = the runner-up), per sample."""
    return logits.argsort(dim=1)[:, -rank]


def first_broken_pair(owner: torch.Tensor, broken: torch.Tensor, n: int) -> torch.Tensor:
    """Per image (``n`` of them): index of its first broken pair, or ``len(owner)`` if none broke it."""
    pairs = torch.arange(len(owner), device=owner.device)
    first = torch.full((n,), len(owner), dtype=torch.long, device=owner.device)
    return first.scatter_reduce(0, owner[broken], pairs[broken], reduce="amin")


def over_targets(attack: PairAttack, x: torch.Tensor, logits: torch.Tensor, n_targets: int,
                 generator: torch.Generator, max_pairs: int = MAX_PAIRS) -> tuple[torch.Tensor, torch.Tensor]:
    """Attack every image of ``x`` towards its top ``n_targets`` non-true classes (clean ``logits``).

    Ranks 2 … n_targets + 1 are taken in order, as many per wave as ``max_pairs`` allows for the
    images still robust (at least one: ``max_pairs=1`` is the sequential schedule). Returns
    (x_adv, broken) per image; x_adv is the first broken pair's point (or ``x``).
    """
    seeds = torch.randint(0, 2**62, (len(x), n_targets), generator=generator, device=generator.device).cpu()
    x_adv = x.clone()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    rank, last = 2, n_targets + 1
    while rank <= last:
        todo = (~broken).nonzero().flatten()
        if len(todo) == 0:
            break
        ranks = range(rank, min(rank + max(max_pairs // len(todo), 1), last + 1))
        rank = ranks[-1] + 1
        owner = todo.repeat(len(ranks))
        target = torch.cat([target_ranks(logits[todo], r) for r in ranks])
        pair_seeds = torch.cat([seeds[todo.cpu(), r - 2] for r in ranks]).tolist()
        xa, br = attack(owner, target, pair_seeds)
        first = first_broken_pair(owner, br, len(x))
        hit = first < len(owner)
        x_adv[hit] = xa[first[hit]]
        broken |= hit
    return x_adv, broken
