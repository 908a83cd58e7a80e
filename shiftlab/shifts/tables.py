"""Severity parameter tables of Hendrycks & Dietterich 2019 (arXiv:1903.12261) per image scale.

Sources (github.com/hendrycks/robustness, ImageNet-C/create_c/):
- "cifar":    make_cifar_c.py (CIFAR-10-C, 32 px)
- "tiny":     make_tinyimagenet_c.py (Tiny-ImageNet-C, 64 px)
- "imagenet": make_imagenet_c.py (ImageNet-C, 224 px), which imagecorruptions 1.1.2 also uses;
  for elastic_transform the "imagenet" row follows imagecorruptions' size-relative rewrite
  (alpha 250·{.05,.065,.085,.1,.12}, sigma 1 % of H, displacement noise ±0.5 % of H, no affine)
  because that is the public package every ImageNet-C user runs; the script's version is affine+elastic.
Each row is severities 1..5. Resolution-specific numbers (32, 64, 224 in the scripts) are expressed
relative to the image size in the corruption code.
"""

from __future__ import annotations

from typing import Any

Table = dict[str, tuple[Any, ...]]


def _zoom(stop_step: list[tuple[float, float]]) -> tuple[tuple[float, ...], ...]:
    """numpy.arange(1, stop, step) for each severity, computed exactly as numpy does (ceil of the span)."""
    import math

    return tuple(tuple(1.0 + i * step for i in range(math.ceil((stop - 1.0) / step))) for stop, step in stop_step)


TABLE: dict[str, Table] = {
    # scale of N(0, c)
    "gaussian_noise": {"cifar": (.04, .06, .08, .09, .10), "tiny": (.04, .08, .12, .15, .18),
                       "imagenet": (.08, .12, .18, .26, .38)},
    # Poisson rate multiplier
    "shot_noise": {"cifar": (500, 250, 100, 75, 50), "tiny": (250, 100, 50, 30, 15),
                   "imagenet": (60, 25, 12, 5, 3)},
    # salt-and-pepper amount
    "impulse_noise": {"cifar": (.01, .02, .03, .05, .07), "tiny": (.01, .02, .05, .08, .14),
                      "imagenet": (.03, .06, .09, .17, .27)},
    "speckle_noise": {"cifar": (.06, .1, .12, .16, .2), "tiny": (.15, .2, .25, .3, .35),
                      "imagenet": (.15, .2, .35, .45, .6)},
    # sigma
    "gaussian_blur": {"cifar": (.4, .6, .7, .8, 1), "tiny": (.5, .75, 1, 1.25, 1.5),
                      "imagenet": (1, 2, 3, 4, 6)},
    # (sigma, max_delta, iterations)
    "glass_blur": {"cifar": ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
                   "tiny": ((0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)),
                   "imagenet": ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))},
    # (disk radius, alias blur)
    "defocus_blur": {"cifar": ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
                     "tiny": ((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
                     "imagenet": ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))},
    # (radius, sigma) of the motion kernel
    "motion_blur": {"cifar": ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
                    "tiny": ((10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)),
                    "imagenet": ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))},
    # zoom factors
    "zoom_blur": {
        "cifar": _zoom([(1.06, .01), (1.11, .01), (1.16, .01), (1.21, .01), (1.26, .01)]),
        "tiny": _zoom([(1.06, .01), (1.11, .01), (1.16, .01), (1.21, .01), (1.26, .01)]),
        "imagenet": _zoom([(1.11, .01), (1.16, .01), (1.21, .02), (1.26, .02), (1.31, .03)]),
    },
    # (loc, scale, zoom, threshold, blur radius, blur sigma, blend)
    "snow": {"cifar": ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                       (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                       (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
             "tiny": ((0.1, 0.2, 1, 0.6, 8, 3, 0.8), (0.1, 0.2, 1, 0.5, 10, 4, 0.8),
                      (0.15, 0.3, 1.75, 0.55, 10, 4, 0.7), (0.25, 0.3, 2.25, 0.6, 12, 6, 0.65),
                      (0.3, 0.3, 1.25, 0.65, 14, 12, 0.6)),
             "imagenet": ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                          (0.55, 0.3, 4, 0.9, 12, 8, 0.7), (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                          (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))},
    # (image weight, frost weight)
    "frost": {"cifar": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
              "tiny": ((1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)),
              "imagenet": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))},
    # (strength, wibble decay)
    "fog": {"cifar": ((.2, 3), (.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
            "tiny": ((.4, 3), (.7, 3), (1, 2.5), (1.5, 2), (2, 1.75)),
            "imagenet": ((1.5, 2), (2., 2), (2.5, 1.7), (2.5, 1.5), (3., 1.4))},
    # (loc, scale, sigma, threshold, intensity, mode 0 water / 1 mud)
    "spatter": {"cifar": ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
                          (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
                "tiny": ((0.62, 0.1, 0.7, 0.7, 0.6, 0), (0.65, 0.1, 0.8, 0.7, 0.6, 0), (0.65, 0.3, 1, 0.69, 0.6, 0),
                         (0.65, 0.1, 0.7, 0.68, 0.6, 1), (0.65, 0.1, 0.5, 0.67, 0.6, 1)),
                "imagenet": ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
                             (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1))},
    "contrast": {"cifar": (.75, .5, .4, .3, 0.15), "tiny": (.4, .3, .2, .1, 0.05),
                 "imagenet": (0.4, .3, .2, .1, .05)},
    "brightness": {"cifar": (.05, .1, .15, .2, .3), "tiny": (.1, .2, .3, .4, .5),
                   "imagenet": (.1, .2, .3, .4, .5)},
    # (saturation multiplier, offset)
    "saturate": {"cifar": ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
                 "tiny": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)),
                 "imagenet": ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))},
    # JPEG quality
    "jpeg_compression": {"cifar": (80, 65, 58, 50, 40), "tiny": (65, 58, 50, 40, 25),
                         "imagenet": (25, 18, 15, 10, 7)},
    # downscale factor
    "pixelate": {"cifar": (0.95, 0.9, 0.85, 0.75, 0.65), "tiny": (0.9, 0.8, 0.7, 0.6, 0.5),
                 "imagenet": (0.6, 0.5, 0.4, 0.3, 0.25)},
    # cifar/tiny: (alpha, sigma, affine) as fractions of the image size (scripts: IMSIZE * c);
    # imagenet (imagecorruptions): alpha absolute, sigma and noise range as fractions of H
    "elastic_transform": {
        "cifar": ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)),
        "tiny": ((0, 0, 0.08), (0.05, 0.3, 0.06), (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02)),
        "imagenet": tuple((250 * a, 0.01, 0.0) for a in (0.05, 0.065, 0.085, 0.1, 0.12)),
    },
}


def params(name: str, table: str, severity: int) -> Any:
    """The row for (corruption, table, severity)."""
    return TABLE[name][table][severity - 1]
