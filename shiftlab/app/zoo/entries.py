"""The zoo's entries: one training configuration per recipe (and a second TRADES beta).

Every entry trains small-cnn on the Fashion-MNIST train split (54,000 images after the seeded
10 % validation hold-out) for ``ZOO_EPOCHS`` epochs with SGD + Nesterov, one-cycle schedule,
batch 128, seed 0: the recipe is the only thing that changes. Adversarial recipes use their
defaults (L∞ eps 0.1, 7 steps of eps/4). ``pgd-at`` keeps the epoch with the best PGD-10 accuracy
on 1,000 validation images (robust early stopping, Rice et al. 2020); its card records the
per-epoch scores next to the final epoch's.
The architecture entries (``arch``: vit-tiny, mlp-mixer-tiny, small-cnn-aa; Dosovitskiy et al. 2021,
Tolstikhin et al. 2021, Zhang 2019) train another network with ERM under the same protocol.
The randomized-smoothing entries (gaussian-smoothing, smoothing-consistency, smoothmix, smoothadv,
fouriermix) train at their default σ = 0.25, the noise level to certify them at (``--suite certify``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shiftlab.core.registry import Registry

ZOO_EPOCHS = 1
ZOO_MODEL = "small-cnn"
ZOO_DATASET = "fashion-mnist"
ZOO_SEED = 0


@dataclass(frozen=True)
class ZooEntry:
    """How one zoo model is trained.

    Args:
        name: the zoo name (also the directory under ``zoo/``).
        recipe: registered recipe name; ``recipe_args`` its hyper-parameters (as for --recipe-arg).
        select: robust early stopping metric (clean / corruption / adversarial), or None for the last epoch.
        arch: the architecture (small-cnn unless the entry compares architectures).
        cost: rough cost of one step relative to ERM (measured by ``benchmarks/recipes.py``), used
            only to balance ``shiftlab zoo train --jobs``.
    """

    name: str
    recipe: str
    recipe_args: dict[str, str] = field(default_factory=dict)
    select: str | None = None
    cost: float = 1.0
    arch: str = ZOO_MODEL

    @property
    def model_name(self) -> str:
        if self.arch != ZOO_MODEL:
            return f"{self.arch}-{self.recipe}"
        return f"{ZOO_MODEL}-{self.name}"


ZOO: Registry[ZooEntry, None] = Registry("zoo model")

for _entry in (
    ZooEntry("erm", "erm"),
    ZooEntry("mixup", "mixup"),
    ZooEntry("manifold-mixup", "manifold-mixup"),
    ZooEntry("cutmix", "cutmix", cost=1.2),
    ZooEntry("yoco", "yoco"),
    ZooEntry("augmix", "augmix", cost=3.8),
    ZooEntry("prime", "prime", cost=3.8),
    ZooEntry("pixmix", "pixmix", cost=1.2),
    ZooEntry("gaussian-noise", "gaussian-noise"),
    ZooEntry("pgd-at", "pgd-at", select="adversarial", cost=6.8),
    ZooEntry("trades", "trades", cost=7.7),
    ZooEntry("trades-beta1", "trades", {"beta": "1"}, cost=7.7),
    ZooEntry("fat", "fat", cost=5.7),
    ZooEntry("fast-at", "fast-at", cost=1.9),
    ZooEntry("interpolated-at", "interpolated-at", cost=7.1),
    ZooEntry("advprop", "advprop", cost=4.5),
    ZooEntry("vit-tiny", "erm", arch="vit-tiny", cost=1.3),
    ZooEntry("mlp-mixer-tiny", "erm", arch="mlp-mixer-tiny", cost=0.8),
    ZooEntry("small-cnn-aa", "erm", arch="small-cnn-aa", cost=2.8),
    ZooEntry("gaussian-smoothing", "gaussian-smoothing"),
    ZooEntry("smoothing-consistency", "smoothing-consistency", cost=2.0),
    ZooEntry("smoothmix", "smoothmix", cost=8.0),
    ZooEntry("smoothadv", "smoothadv", cost=5.0),
    ZooEntry("fouriermix", "fouriermix", cost=6.5),
):
    ZOO.add(_entry.name, _entry, None)
