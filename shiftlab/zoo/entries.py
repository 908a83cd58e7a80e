"""The zoo's entries: one training configuration per recipe (and a second TRADES beta).

Every entry trains small-cnn on the Fashion-MNIST train split (54,000 images after the seeded
10 % validation hold-out) for ``ZOO_EPOCHS`` epochs with SGD + Nesterov, one-cycle schedule,
batch 128, seed 0: the recipe is the only thing that changes. Adversarial recipes use their
defaults (L∞ eps 0.1, 7 steps of eps/4). ``pgd-at`` keeps the epoch with the best PGD-10 accuracy
on 1,000 validation images (robust early stopping, Rice et al. 2020); its card records the
per-epoch scores next to the final epoch's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shiftlab.registry import Registry

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
        cost: rough cost of one step relative to ERM (measured by ``benchmarks/recipes.py``), used
            only to balance ``shiftlab zoo train --jobs``.
    """

    name: str
    recipe: str
    recipe_args: dict[str, str] = field(default_factory=dict)
    select: str | None = None
    cost: float = 1.0

    @property
    def model_name(self) -> str:
        return f"{ZOO_MODEL}-{self.name}"


ZOO: Registry[ZooEntry] = Registry("zoo model")

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
):
    ZOO.add(_entry.name, _entry, meta=_entry)
