"""shiftlab's own model zoo: models trained on Fashion-MNIST by shiftlab (small-cnn with every recipe,
vit-tiny, mlp-mixer-tiny).

``ZOO`` names each entry's training recipe (fixed seed, stored config); the checkpoints
(safetensors + card) are package data (``shiftlab/models/zoo``), named ``zoo:NAME`` anywhere a
checkpoint is expected. ``shiftlab zoo train`` rebuilds them, ``shiftlab zoo list|show|evaluate`` use them.
"""

from shiftlab.app.zoo.catalog import ZooModel, installed, resolve
from shiftlab.app.zoo.entries import ZOO, ZOO_EPOCHS, ZooEntry

__all__ = ["ZOO", "ZOO_EPOCHS", "ZooEntry", "ZooModel", "installed", "resolve"]
