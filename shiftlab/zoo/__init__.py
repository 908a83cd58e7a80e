"""shiftlab's own model zoo: small-cnn on Fashion-MNIST trained with every recipe.

``ZOO`` names each entry's training recipe (fixed seed, stored config); the checkpoints
(safetensors + card) live in the repository's ``zoo/`` directory. ``shiftlab zoo train`` rebuilds
them, ``shiftlab zoo list|show|evaluate`` use them.
"""

from shiftlab.zoo.catalog import ZooModel, default_zoo_dir, installed, resolve
from shiftlab.zoo.entries import ZOO, ZOO_EPOCHS, ZooEntry

__all__ = ["ZOO", "ZOO_EPOCHS", "ZooEntry", "ZooModel", "default_zoo_dir", "installed", "resolve"]
