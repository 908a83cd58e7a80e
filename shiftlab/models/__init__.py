"""Architectures, the Normalized wrapper, safe checkpoint IO and fingerprints."""

from shiftlab.models import blurpool, external, mixer, resnets, small_cnn, vit  # noqa: F401  (registration)
from shiftlab.models.base import MODELS, ModelConfig, Normalized, build_model
from shiftlab.models.checkpoint import (
    ModelCard,
    checkpoint_fingerprint,
    fingerprint,
    load_model,
    locate,
    read_card,
    save_checkpoint,
    zoo_dir,
)
from shiftlab.models.external import is_named, named_model


def config_for(arch: str, info: "object", **options: object) -> ModelConfig:
    """A ModelConfig for architecture ``arch`` on a dataset described by ``info`` (a DatasetInfo)."""
    return ModelConfig(
        arch=arch,
        num_classes=info.num_classes,  # type: ignore[attr-defined]
        in_channels=info.channels,  # type: ignore[attr-defined]
        image_size=tuple(info.image_size),  # type: ignore[attr-defined]
        mean=tuple(info.mean),  # type: ignore[attr-defined]
        std=tuple(info.std),  # type: ignore[attr-defined]
        options=dict(options),
    )


__all__ = [
    "MODELS",
    "ModelCard",
    "ModelConfig",
    "Normalized",
    "build_model",
    "checkpoint_fingerprint",
    "is_named",
    "named_model",
    "locate",
    "zoo_dir",
    "config_for",
    "fingerprint",
    "load_model",
    "read_card",
    "save_checkpoint",
]
