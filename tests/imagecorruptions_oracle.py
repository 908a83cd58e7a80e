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
