"""imagecorruptions 1.1.2 (Michaelis et al. 2019, the packaged ImageNet-C generators of Hendrycks &
Dietterich 2019) as a test oracle, importable on a current stack.

Shims, none of which changes its arithmetic:
- it imports ``pkg_resources`` (gone from recent setuptools): a stub module exposing
  ``resource_filename(package, path)`` that resolves into the installed package's directory;
- ``fog`` allocates with ``np.float_`` (removed in NumPy 2): alias it to ``np.float64`` if missing;
- glass_blur / gaussian_blur call ``skimage.filters.gaussian(..., multichannel=True)`` (removed in
  scikit-image 0.19+): the module's ``gaussian`` is wrapped to map it to ``channel_axis=-1``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from typing import Any

import numpy as np


def _install_pkg_resources_stub() -> None:
    if "pkg_resources" in sys.modules:
        return
    try:
        import pkg_resources  # noqa: F401

        return
    except ImportError:
        pass

    def resource_filename(package: str, path: str) -> str:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ImportError(package)
        return os.path.join(os.path.dirname(spec.origin), path)

    stub = types.ModuleType("pkg_resources")
    stub.resource_filename = resource_filename  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = stub


def load() -> types.ModuleType:
    """The shimmed ``imagecorruptions.corruptions`` module."""
    _install_pkg_resources_stub()
    if not hasattr(np, "float_"):
        np.float_ = np.float64  # type: ignore[attr-defined]
    from imagecorruptions import corruptions as ic

    if not getattr(ic, "_shiftlab_shimmed", False):
        original = ic.gaussian

        def gaussian(image: Any, *args: Any, multichannel: bool | None = None, **kwargs: Any) -> Any:
            if multichannel:
                kwargs.setdefault("channel_axis", -1)
            return original(image, *args, **kwargs)

        ic.gaussian = gaussian
        ic._shiftlab_shimmed = True
    return ic


def corrupt(images: np.ndarray, name: str, severity: int, seed: int) -> np.ndarray:
    """Corrupt uint8 H×W×3 images one by one as ``imagecorruptions.corrupt`` does (uint8 out),
    seeding numpy's global RNG (the package only draws from it) once per call."""
    from PIL import Image

    ic = load()
    fn = getattr(ic, name)
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        out = []
        for img in images:
            y = fn(Image.fromarray(img), severity)
            out.append(np.uint8(y))
        return np.stack(out)
    finally:
        np.random.set_state(state)


# frost at every parameter table. imagecorruptions implements ImageNet-C's frost only; the CIFAR-10-C and
# Tiny-ImageNet-C scripts of Hendrycks & Dietterich (make_cifar_c.py, make_tinyimagenet_c.py) blend crops of
# the same photographs shrunk by cv2.resize(fx = fy = 0.2 or 0.3, bilinear) with their own weights. The
# procedure below follows each, on imagecorruptions' packaged photographs.
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")  # randint(5) of six
FROST_SHRINK = {"cifar": 0.2, "tiny": 0.3}
FROST_WEIGHTS = {  # (image weight, frost weight) per severity, from the three generators
    "cifar": ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
    "tiny": ((1, 0.3), (0.9, 0.4), (0.8, 0.45), (0.75, 0.5), (0.7, 0.55)),
    "imagenet": ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75)),
}


def frost_photographs(table: str, height: int, width: int) -> list[np.ndarray]:
    """The five photographs the reference draws from, BGR uint8 as ``cv2.imread`` reads them, at the scale
    the reference uses for ``table``: shrunk ×0.2 / ×0.3 (cifar / tiny scripts), or as imagecorruptions
    does: ×1.1 bicubic of the factor that makes the photograph cover the image (1 when it already does)."""
    import cv2

    load()
    from imagecorruptions import corruptions as ic

    folder = os.path.join(os.path.dirname(ic.__file__), "frost")
    photos = []
    for name in FROST_FILES:
        photo = cv2.imread(os.path.join(folder, name))
        if table in FROST_SHRINK:
            photo = cv2.resize(photo, (0, 0), fx=FROST_SHRINK[table], fy=FROST_SHRINK[table])
        else:
            ph, pw = photo.shape[:2]
            factor = 1.1 * max(1.0, height / ph, width / pw)
            photo = cv2.resize(photo, (int(np.ceil(pw * factor)), int(np.ceil(ph * factor))),
                               interpolation=cv2.INTER_CUBIC)
        photos.append(photo)
    return photos


def frost_reference(images: np.ndarray, table: str, severity: int, photos: list[np.ndarray],
                    picks: np.ndarray | None, rng: np.random.RandomState) -> np.ndarray:
    """The reference's frost of uint8 N×H×W×3 images (uint8 out, ``np.uint8`` truncation as the generators
    store them), drawing from ``rng`` in the reference's order: the photograph (randint(5); ``picks`` fixes
    it per image instead), then the crop's top row and left column."""
    c0, c1 = FROST_WEIGHTS[table][severity - 1]
    h, w = images.shape[1:3]
    out = []
    for i, img in enumerate(images):
        k = rng.randint(5) if picks is None else int(picks[i])
        photo = photos[k]
        top, left = rng.randint(0, photo.shape[0] - h), rng.randint(0, photo.shape[1] - w)
        crop = photo[top:top + h, left:left + w][..., [2, 1, 0]]
        out.append(np.uint8(np.clip(c0 * img.astype(np.float64) + c1 * crop, 0, 255)))
    return np.stack(out)
