"""Natural distribution shifts: test sets with the classes of a training distribution, drawn differently.

Readers of the published sets, for users who have them (nothing is downloaded; give the directory with
``--shifted-data NAME:/path``, or ``root=`` in :func:`~shiftlab.data.load_dataset`). Each is a test split only:

- ``cifar10.1``: CIFAR-10.1 (Recht, Roelofs, Schmidt & Shankar 2018, "Do CIFAR-10 Classifiers
  Generalize to CIFAR-10?", arXiv:1806.00451): ``cifar10.1_v6_data.npy`` (N×32×32×3 uint8) and
  ``cifar10.1_v6_labels.npy`` (CIFAR-10's class indices); extra key ``version=v4`` reads the v4 files.
- ``cifar10.2``: CIFAR-10.2 (Lu, Nott, Olson, Todeschini, Vahabi, Carmon & Schmidt 2020, "Harder or
  Different? A Closer Look at Distribution Shift in Dataset Reproduction"): ``cifar102_test.npz`` holding
  the arrays ``images`` (N×32×32×3 uint8) and ``labels``.
- ``imagenet-v2``: ImageNetV2 (Recht et al. 2019, "Do ImageNet Classifiers Generalize to ImageNet?",
  arXiv:1902.10811): the published folders ``0`` … ``999`` (a folder's name is the ImageNet class index,
  read numerically, not in the lexicographic order a plain image folder would give), or wnid folders.
- ``imagenet-sketch``: ImageNet-Sketch (Wang, Ge, Lipton & Xing 2019, arXiv:1905.13549): wnid folders.
- ``imagenet-a``: ImageNet-A (Hendrycks, Zhao, Basart, Steinhardt & Song 2021, "Natural Adversarial
  Examples", arXiv:1907.07174) and ``imagenet-r``: ImageNet-R (Hendrycks et al. 2021, "The Many Faces of
  Robustness", arXiv:2006.16241): folders of a 200-class subset, named by wnid.

The folder sets are read like ``image-folder`` (shorter side resized to size/0.875, centre crop; size
``DatasetRequest.image_size``, default 224). A directory may be the class folders themselves or hold them
under the published name (``imagenetv2-matched-frequency-format-val``, ``sketch``, ``imagenet-a``,
``imagenet-r``).

**Classes.** A shifted set names its classes (``DatasetInfo.class_names``: CIFAR-10's names, wnids, or
ImageNetV2's class indices written as numbers); :func:`align_classes` maps them onto the classes of the
model's test set by name (numbers are taken as class indices). When the set covers only some of the
model's classes (ImageNet-A and -R: 200 of 1000), the alignment's ``class_subset`` lists them and
predictions are the argmax over those classes only, as both papers evaluate.

**Derived Fashion-MNIST sets** (synthetic, deterministic, the same ten classes): ``fashion-mnist-rescaled``
re-renders every test image at a random scale in [0.6, 0.8] (antialiased bilinear) at a random position
of the black 28×28 canvas, scale and position drawn per image from a fixed seed; ``fashion-mnist-sketch``
keeps only each image's edges (Sobel gradient magnitude, scaled to the image's maximum), so the garment's
outline and seams remain without its shading and texture, in the spirit of ImageNet-Sketch. Both are
natural-*style* shifts of the same 10,000 photographs, not new data collections like CIFAR-10.1 or
ImageNetV2: they test how a model's accuracy carries over to a change of scale and position, or of
rendering style, of the images it was tested on, not how it generalises to a new sample of the world.
Each has its own content fingerprint (the rendered images), so its rows are never shared with the source's.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shiftlab.core.errors import DatasetNotFoundError, UserError
from shiftlab.core.seeding import ImageStreams
from shiftlab.data.base import (
    DATASETS,
    DatasetInfo,
    DatasetMeta,
    DatasetRequest,
    DerivedDataset,
    ImageDataset,
    TensorImageDataset,
    file_signature,
)
from shiftlab.data.cifar import LAYOUT as CIFAR_LAYOUT
from shiftlab.data.fashion_mnist import fashion_mnist
from shiftlab.data.image_folder import ImageFolderDataset

DEFAULT_ROOT = Path("~/.cache/shiftlab/data")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
"""CIFAR-10's class names in its label order (``batches.meta``), which CIFAR-10.1 and CIFAR-10.2 keep."""

NATURAL_SHIFTS: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("fashion-mnist-rescaled", "fashion-mnist-sketch"),
    "cifar10": ("cifar10.1", "cifar10.2"),
}
"""The natural-shift sets of a dataset that the natural suite evaluates when none are named."""

DERIVED_FROM: dict[str, str] = {"fashion-mnist-rescaled": "fashion-mnist", "fashion-mnist-sketch": "fashion-mnist"}
"""Derived sets and the dataset whose files (and root) they are rendered from."""


# ---------------------------------------------------------------------------------------------
# class alignment


@dataclasses.dataclass(frozen=True, slots=True)
class ClassAlignment:
    """How a shifted set's labels index a model's classes.

    Args:
        targets: the model's class index of the shifted set's class k, for every k.
        num_classes: the model's number of classes.
        class_subset: the model's classes the set covers (ascending) when it covers fewer than all of
            them: predictions are then the argmax over these classes only; None when it covers all.
    """

    targets: tuple[int, ...]
    num_classes: int
    class_subset: tuple[int, ...] | None

    def restrict(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's logits (N×num_classes) and the set's labels -> logits over the covered classes and
        labels indexing them (the model's classes themselves when the set covers all)."""
        target = torch.tensor(self.targets, dtype=torch.int64)[labels.cpu()]
        if self.class_subset is None:
            return logits, target
        subset = torch.tensor(self.class_subset, dtype=torch.int64)
        position = torch.full((self.num_classes,), -1, dtype=torch.int64)
        position[subset] = torch.arange(len(subset))
        return logits[:, subset.to(logits.device)], position[target]


def align_classes(shifted: DatasetInfo, model_classes: tuple[str, ...], name: str) -> ClassAlignment:
    """Map the classes of the shifted set ``name`` onto ``model_classes`` by name; names that are all whole
    numbers below ``len(model_classes)`` are class indices (ImageNetV2's folders). Anything else is a
    one-line UserError."""
    index = {c: i for i, c in enumerate(model_classes)}
    names = shifted.class_names
    if all(c in index for c in names):
        targets = tuple(index[c] for c in names)
    elif all(c.isdigit() and int(c) < len(model_classes) for c in names):
        targets = tuple(int(c) for c in names)
    else:
        unknown = [c for c in names if c not in index]
        raise UserError(f"{name}'s classes ({', '.join(unknown[:3])}{', ...' if len(unknown) > 3 else ''}) are not "
                        f"among the model's {len(model_classes)} classes ({', '.join(model_classes[:3])}, ...); "
                        "a natural-shift set must use the evaluated dataset's class names")
    if len(set(targets)) != len(targets):
        raise UserError(f"{name} names one of the model's classes twice")
    covered = tuple(sorted(targets))
    return ClassAlignment(targets, len(model_classes), None if len(covered) == len(model_classes) else covered)


# ---------------------------------------------------------------------------------------------
# derived Fashion-MNIST sets

RENDER_VERSION = "1"
"""Part of the derived sets' source signature: bump it when a rendering changes, so cached content
fingerprints are recomputed."""
RESCALE_SEED = 0
RESCALE_RANGE = (0.6, 0.8)
SOBEL = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))


def to_grey_levels(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> the nearest of the 256 grey levels (uint8)."""
    return (x.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def render_rescaled(images: torch.Tensor, indices: torch.Tensor, seed: int = RESCALE_SEED,
                    scale_range: tuple[float, float] = RESCALE_RANGE) -> torch.Tensor:
    """Every image (uint8 N×C×H×W; ``indices``: their positions in the test set) shrunk by its own scale in
    ``scale_range`` (antialiased bilinear) and placed at its own position of a black canvas of the same
    size; scale and position come from the image's index and ``seed`` only
    (:class:`~shiftlab.core.seeding.ImageStreams`, counter-based), so an image renders the same alone or in
    any batch, on any machine."""
    n, c, h, w = images.shape
    streams = ImageStreams.for_images(seed, "fashion-mnist-rescaled", indices)
    low, high = scale_range
    scale = low + (high - low) * streams.rand("scale", (1,), dtype=torch.float64)[:, 0]
    side_h = (scale * h).round().long().clamp(1, h)
    side_w = (scale * w).round().long().clamp(1, w)
    dy = streams.randint("dy", h - side_h + 1)
    dx = streams.randint("dx", w - side_w + 1)
    x = images.float() / 255.0
    placed = torch.zeros_like(x)
    for sh, sw in sorted(set(zip(side_h.tolist(), side_w.tolist(), strict=True))):
        group = ((side_h == sh) & (side_w == sw)).nonzero()[:, 0]
        small = F.interpolate(x[group], size=(sh, sw), mode="bilinear", antialias=True, align_corners=False)
        placed[group] = F.pad(small, (0, w - sw, 0, h - sh))  # top-left; moved below
    rows = (torch.arange(h).view(1, h) - dy.view(n, 1)) % h  # a cyclic shift of a zero-padded image is a shift
    cols = (torch.arange(w).view(1, w) - dx.view(n, 1)) % w
    moved = placed[torch.arange(n).view(n, 1, 1), :, rows.view(n, h, 1), cols.view(n, 1, w)]  # N×H×W×C
    return to_grey_levels(moved.permute(0, 3, 1, 2))


def render_sketch(images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Every image (uint8 N×C×H×W) replaced by its Sobel gradient magnitude (replicate padding), scaled so
    its brightest edge is white; a flat image stays black (``indices`` are not needed: nothing is random)."""
    n, c, h, w = images.shape
    # grey levels in float64: the Sobel sums are whole numbers, exact, so a flat image has no edge at all
    x = F.pad(images.to(torch.float64).reshape(n * c, 1, h, w), (1, 1, 1, 1), mode="replicate")
    kernel = torch.tensor(SOBEL, dtype=torch.float64)
    gx = F.conv2d(x, kernel.view(1, 1, 3, 3))
    gy = F.conv2d(x, kernel.t().contiguous().view(1, 1, 3, 3))
    magnitude = torch.hypot(gx, gy).reshape(n, c, h, w)
    top = magnitude.amax((1, 2, 3), keepdim=True)
    scaled = torch.where(top > 0, magnitude / top.clamp_min(1e-12), torch.zeros_like(magnitude))
    return to_grey_levels(scaled.to(torch.float32))


Render = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(uint8 images, their indices in the source) -> uint8 images of the same shape."""


class RenderedDataset(DerivedDataset):
    """A test set re-rendered image by image from an in-memory source, lazily: only the images asked for are
    rendered, and an image is the same whichever batch it is read in."""

    def __init__(self, source: TensorImageDataset, render: Render, info: DatasetInfo, signature: str) -> None:
        super().__init__(source, info)
        self.source, self.render, self._signature = source, render, signature

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = indices.long().reshape(-1)
        return self.render(self.source.images[idx], idx).float().div_(255.0), self.source.labels[idx]

    def describe(self) -> str:
        return f"{self.info.name}: {len(self)} images rendered from {self.source.describe()}"

    def signature(self) -> str | None:
        return self._signature


def _derived(name: str, render: Render, how: str) -> Callable[[DatasetRequest], ImageDataset]:
    def build(request: DatasetRequest) -> ImageDataset:
        if request.split != "test":
            raise UserError(f"{name} is a test set only (rendered from the Fashion-MNIST test split); evaluate a "
                            f"model trained on fashion-mnist on it with --suite natural --shifted-data {name}")
        source = fashion_mnist(dataclasses.replace(request, extra=()))
        if not isinstance(source, TensorImageDataset):  # pragma: no cover - the test split is held in memory
            raise TypeError("the Fashion-MNIST test split is expected in memory")
        base = source.signature() or ""
        signature = hashlib.sha256(f"{base}|{name} v{RENDER_VERSION}: {how}".encode()).hexdigest()
        return RenderedDataset(source, render, dataclasses.replace(source.info, name=name), signature)

    build.__doc__ = f"The {name!r} test set: {how} (see the module docstring)."
    return build


DATASETS.add("fashion-mnist-rescaled", _derived(
    "fashion-mnist-rescaled", render_rescaled,
    f"each image shrunk to a random scale in [{RESCALE_RANGE[0]:g}, {RESCALE_RANGE[1]:g}] at a random position, "
    f"seed {RESCALE_SEED}"),
    DatasetMeta("Fashion-MNIST test images re-rendered smaller at a random position (synthetic natural-style shift, "
                "same classes; test split only)", citation="derived from Xiao, Rasul & Vollgraf 2017"))
DATASETS.add("fashion-mnist-sketch", _derived(
    "fashion-mnist-sketch", render_sketch, "Sobel edge magnitude scaled to the image's maximum"),
    DatasetMeta("Fashion-MNIST test images reduced to their edges (synthetic style shift after ImageNet-Sketch, "
                "same classes; test split only)", citation="derived from Xiao, Rasul & Vollgraf 2017"))


# ---------------------------------------------------------------------------------------------
# readers of the published sets


def _test_only(request: DatasetRequest, name: str) -> None:
    if request.split != "test":
        raise UserError(f"{name} is a test set only; it has no {request.split} split")


def _root(request: DatasetRequest, folder: str) -> Path:
    """The directory of a published set: the request's root, else ``~/.cache/shiftlab/data/<folder>``."""
    return request.root if request.root is not None else (DEFAULT_ROOT / folder).expanduser()


def _missing(path: Path, name: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(f"{path} is missing; {name} is not downloaded by shiftlab: fetch it from its authors "
                                f"and pass its directory (--shifted-data {name}:/path/to/dir)")


def _cifar_info(name: str) -> DatasetInfo:
    mean, std = CIFAR_LAYOUT["cifar10"][6], CIFAR_LAYOUT["cifar10"][7]
    return DatasetInfo(name, len(CIFAR10_CLASSES), CIFAR10_CLASSES, 3, (32, 32), mean, std)


def cifar_arrays(images: np.ndarray, labels: np.ndarray, source: Path, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """N×32×32×3 uint8 images and N labels in 0..9, checked, as N×3×32×32 and int64 tensors."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (32, 32, 3):
        raise DatasetNotFoundError(f"{source}: {name} images must be uint8 N×32×32×3, got {images.dtype} "
                                   f"{images.shape}")
    if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetNotFoundError(f"{source}: {name} needs one integer label per image, got {labels.dtype} "
                                   f"{labels.shape} for {len(images)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CIFAR10_CLASSES)):
        raise DatasetNotFoundError(f"{source}: {name} labels must lie in 0..9")
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous(), \
        torch.from_numpy(labels.astype(np.int64))


@DATASETS.register("cifar10.1", meta=DatasetMeta(
    "CIFAR-10.1 (v6; extra version=v4): 2,000 new CIFAR-10-class test images (npy files; not downloaded)",
    str(DEFAULT_ROOT / "cifar10.1"), "Recht et al. 2018, arXiv:1806.00451"))
def cifar10_1(request: DatasetRequest) -> ImageDataset:
    """CIFAR-10.1 from ``cifar10.1_<version>_data.npy`` and ``cifar10.1_<version>_labels.npy``."""
    _test_only(request, "cifar10.1")
    root = _root(request, "cifar10.1")
    version = dict(request.extra).get("version", "v6")
    if version not in ("v4", "v6"):
        raise UserError(f"cifar10.1 comes in versions v4 and v6, got {version!r}")
    data, labels = root / f"cifar10.1_{version}_data.npy", root / f"cifar10.1_{version}_labels.npy"
    for path in (data, labels):
        if not path.exists():
            raise _missing(path, "cifar10.1")
    x, y = cifar_arrays(np.load(data, allow_pickle=False), np.load(labels, allow_pickle=False), root, "cifar10.1")
    return TensorImageDataset(x, y, _cifar_info("cifar10.1"),
                              file_signature([data, labels], f"cifar10.1 {version} npy"))


@DATASETS.register("cifar10.2", meta=DatasetMeta(
    "CIFAR-10.2: 2,000 new CIFAR-10-class test images (cifar102_test.npz; not downloaded)",
    str(DEFAULT_ROOT / "cifar10.2"), "Lu et al. 2020"))
def cifar10_2(request: DatasetRequest) -> ImageDataset:
    """CIFAR-10.2's test set from ``cifar102_test.npz`` (arrays ``images`` and ``labels``)."""
    _test_only(request, "cifar10.2")
    path = _root(request, "cifar10.2") / "cifar102_test.npz"
    if not path.exists():
        raise _missing(path, "cifar10.2")
    with np.load(path, allow_pickle=False) as archive:
        if "images" not in archive or "labels" not in archive:
            raise DatasetNotFoundError(f"{path} must hold the arrays 'images' and 'labels', has {sorted(archive)}")
        x, y = cifar_arrays(archive["images"], archive["labels"], path, "cifar10.2")
    return TensorImageDataset(x, y, _cifar_info("cifar10.2"), file_signature([path], "cifar10.2 npz"))


class NaturalFolder(ImageDataset):
    """Class folders read as :class:`~shiftlab.data.image_folder.ImageFolderDataset`, under the set's own
    name, with numeric folder names (class indices) ordered and labelled numerically."""

    def __init__(self, base: ImageFolderDataset, name: str) -> None:
        folders = base.info.class_names
        numeric = all(f.isdigit() for f in folders)
        classes = tuple(sorted(folders, key=int)) if numeric else folders
        relabel = torch.tensor([classes.index(f) for f in folders], dtype=torch.int64)
        labels = relabel[base.labels]
        self.order = torch.sort(labels, stable=True).indices  # by class, then file name (as image-folder)
        self.base = base
        self._labels = labels[self.order]
        self.info = dataclasses.replace(base.info, name=name, class_names=classes)

    def __len__(self) -> int:
        return len(self.base)

    @property
    def labels(self) -> torch.Tensor:
        return self._labels

    def get_batch(self, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, _ = self.base.get_batch(self.order[indices])
        return x, self._labels[indices]

    def describe(self) -> str:
        return f"{self.info.name}: {self.base.describe()}"

    def signature(self) -> str | None:
        base = self.base.signature()
        return None if base is None else hashlib.sha256(f"{base}|{self.info.name} numeric".encode()).hexdigest()


def _folder_set(name: str, folder: str) -> Callable[[DatasetRequest], ImageDataset]:
    def build(request: DatasetRequest) -> ImageDataset:
        _test_only(request, name)
        if request.root is None:
            raise UserError(f"{name} is not downloaded by shiftlab; pass its directory (--shifted-data {name}:/path)")
        root = request.root / folder if (request.root / folder).is_dir() else request.root
        if not root.is_dir():
            raise _missing(root, name)
        channels = int(dict(request.extra).get("channels", "3"))
        return NaturalFolder(ImageFolderDataset(root, request.image_size or 224, channels), name)

    build.__doc__ = f"The {name} test set from class folders (optionally under {folder}/)."
    return build


for _name, _folder, _what, _cite in (
    ("imagenet-v2", "imagenetv2-matched-frequency-format-val",
     "ImageNetV2 (matched frequency): 10,000 new ImageNet-class images; folders 0..999 or wnids (not downloaded)",
     "Recht et al. 2019, arXiv:1902.10811"),
    ("imagenet-sketch", "sketch", "ImageNet-Sketch: 50,889 sketches of the 1,000 ImageNet classes, wnid folders "
     "(not downloaded)", "Wang et al. 2019, arXiv:1905.13549"),
    ("imagenet-a", "imagenet-a", "ImageNet-A: 7,500 natural adversarial examples of 200 ImageNet classes, wnid "
     "folders; predictions restricted to those classes (not downloaded)", "Hendrycks et al. 2021, arXiv:1907.07174"),
    ("imagenet-r", "imagenet-r", "ImageNet-R: 30,000 renditions of 200 ImageNet classes, wnid folders; predictions "
     "restricted to those classes (not downloaded)", "Hendrycks et al. 2021, arXiv:2006.16241"),
):
    DATASETS.add(_name, _folder_set(_name, _folder), DatasetMeta(_what, None, _cite))
