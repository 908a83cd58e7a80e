"""Target classes of the targeted attacks (APGD-T, FAB-T), batched across targets.

Croce & Hein 2020 (arXiv:2003.01690) run a targeted attack towards each of the
``n_target_classes`` highest non-true classes in turn, each on the points still robust. Run that way,
the few points left after APGD-CE cost 9 × 100 iterations of a nearly empty batch. Here the ranks are
taken in a few waves (``WAVES``: the runner-up class alone, then all the other ranks together): in a
wave each still robust image is replicated once per rank of the wave and the copies are attacked in
one batch, the target class being per-sample context; when any copy of an image is misclassified,
all its copies leave the batch. Every image still tries every target class unless it is already
broken, as in the sequential schedule.

The waves are the same for every image, whatever its batch: an image's result (which ranks it
tries together, when its copies stop, which adversarial point it returns) then depends only on the
image and its random stream, never on how many other images are still robust (design contract 6).
Each (image, target rank) pair draws its random starts from the image's stream derived by the rank,
so its start is also the same whatever the schedule.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from shiftlab.core.seeding import ImageStreams

WAVES = (1, 8)
"""Target ranks per wave (the last size repeats): rank 2 alone, then ranks 3 … 10 together. The
runner-up class is where a targeted attack most often succeeds, and an image it breaks costs nothing
in the later ranks; the rest are batched, because on the few points that survive a first attack the
per-iteration overhead of a nearly empty batch dominates (measured on CPU: 3 robust points × 9
targets run 2× faster batched than one by one). Fixed, not sized by the number of robust points,
so that an image's result does not depend on its batch."""

PairAttack = Callable[[torch.Tensor, torch.Tensor, ImageStreams], tuple[torch.Tensor, torch.Tensor]]
"""attack(owner, target, streams) -> (x_adv, broken) for the pairs (x[owner[j]], target[j]), pair j
drawing its randomness from ``streams`` (one stream per pair)."""


def target_ranks(logits: torch.Tensor, rank: int) -> torch.Tensor:
    """The class with the ``rank``-th largest logit (rank 2 = the runner-up), per sample."""
    return logits.argsort(dim=1)[:, -rank]


def rank_waves(n_targets: int, waves: tuple[int, ...] = WAVES) -> list[range]:
    """Ranks 2 … n_targets + 1 cut into consecutive waves of ``waves[k]`` ranks (the last size repeats)."""
    out: list[range] = []
    rank, last = 2, n_targets + 1
    while rank <= last:
        size = max(waves[min(len(out), len(waves) - 1)], 1)
        out.append(range(rank, min(rank + size, last + 1)))
        rank += size
    return out


def first_broken_pair(owner: torch.Tensor, broken: torch.Tensor, n: int) -> torch.Tensor:
    """Per image (``n`` of them): index of its first broken pair, or ``len(owner)`` if none broke it."""
    pairs = torch.arange(len(owner), device=owner.device)
    first = torch.full((n,), len(owner), dtype=torch.long, device=owner.device)
    return first.scatter_reduce(0, owner[broken], pairs[broken], reduce="amin")


def over_targets(attack: PairAttack, x: torch.Tensor, logits: torch.Tensor, n_targets: int,
                 rng: ImageStreams, waves: tuple[int, ...] = WAVES) -> tuple[torch.Tensor, torch.Tensor]:
    """Attack every image of ``x`` towards its top ``n_targets`` non-true classes (clean ``logits``).

    Ranks 2 … n_targets + 1 are taken in the waves of ``rank_waves`` (``waves=(1,)`` is the
    sequential schedule), each on the images still robust. A wave's pairs are attacked in calls of
    at most ``max(len(x), ranks in the wave)`` pairs, whole images per call (memory stays that of a
    batch of ``x``). ``rng``: one stream per image of ``x``; pair (i, rank r) gets
    ``rng`` 's stream i derived by r. Returns (x_adv, broken) per image; x_adv is the point of the
    image's lowest broken rank in the wave that broke it (or ``x``).
    """
    x_adv = x.clone()
    broken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    for ranks in rank_waves(n_targets, waves):
        todo = (~broken).nonzero().flatten()
        if len(todo) == 0:
            break
        per_call = max(len(x) // len(ranks), 1)
        for start in range(0, len(todo), per_call):
            images = todo[start:start + per_call]
            owner = images.repeat(len(ranks))  # rank-major: the first broken pair is the lowest rank
            rank_of = torch.tensor(list(ranks)).repeat_interleave(len(images))
            target = torch.cat([target_ranks(logits[images], r) for r in ranks])
            xa, br = attack(owner, target, rng.subset(owner).derive(rank_of))
            first = first_broken_pair(owner, br, len(x))
            hit = first < len(owner)
            x_adv[hit] = xa[first[hit]]
            broken |= hit
    return x_adv, broken
