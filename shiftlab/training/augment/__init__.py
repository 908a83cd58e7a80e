"""Batched, seeded augmentations of [0, 1] image tensors, and the ``AUGMENTATIONS`` registry
of the label-preserving ones (``fn(x, generator) -> x'`` at their default settings)."""

from __future__ import annotations

from dataclasses import dataclass

from shiftlab.core.registry import Registry
from shiftlab.training.augment.augmix import augment_and_mix, augmix
from shiftlab.training.augment.basic import BatchAugment, flip_crop, gaussian_noise, yoco
from shiftlab.training.augment.fourier import fouriermix
from shiftlab.training.augment.mixing import MixedBatch, cutmix, mixup
from shiftlab.training.augment.pixmix import pixmix, procedural_pictures
from shiftlab.training.augment.prime import prime


@dataclass(frozen=True, slots=True)
class AugmentMeta:
    """Registry metadata of a batch augmentation."""

    description: str
    paper: str = ""


AUGMENTATIONS: Registry[BatchAugment, AugmentMeta] = Registry("augmentation")
AUGMENTATIONS.add("flip-crop", flip_crop, AugmentMeta("random flip and 2-pixel padded crop"))
AUGMENTATIONS.add("gaussian-noise", gaussian_noise, AugmentMeta("Gaussian noise, σ ~ U(0, 0.5) per sample"))
AUGMENTATIONS.add("augmix", augmix, AugmentMeta("AugMix chains", "Hendrycks et al. 2020, arXiv:1912.02781"))
AUGMENTATIONS.add("prime", prime, AugmentMeta("PRIME primitives", "Modas et al. 2022, arXiv:2112.13547"))
AUGMENTATIONS.add("pixmix", pixmix, AugmentMeta("PixMix, procedural pictures", "Hendrycks et al. 2022, arXiv:2112.05135"))
AUGMENTATIONS.add("fouriermix", fouriermix, AugmentMeta("FourierMix: random amplitude and phase spectra, mixed chains",
                                                    "Sun et al. 2021, arXiv:2112.00659"))

__all__ = [
    "AUGMENTATIONS", "AugmentMeta", "BatchAugment", "MixedBatch", "augment_and_mix", "augmix", "cutmix", "flip_crop",
    "gaussian_noise", "mixup", "pixmix", "prime", "procedural_pictures", "yoco",
]
