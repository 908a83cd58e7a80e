"""Digital corruptions of Hendrycks & Dietterich 2019 (arXiv:1903.12261): brightness, contrast,
elastic transform, pixelate, JPEG compression, and the extra saturate.

brightness and saturate change V and S in HSV as the reference (skimage rgb2hsv/hsv2rgb) does, in
closed form: every RGB channel is V·(1 − S·t_c) with t_c fixed by the hue, so changing V scales the
pixel and changing S moves each channel along (V − x_c)/(V − min). jpeg_compression really encodes and
decodes: the batch is rounded to uint8 and passed as a list of tensors to torchvision.io.encode_jpeg /
decode_jpeg (libjpeg, quality from the table; CPU; gray images are encoded as one-channel JPEG); the
batch is rounded in its own layout and copied plane by plane into a channels-last uint8 buffer, which
libjpeg reads without a copy. Chunks of a few images
are rounded, coded and copied back on a thread pool of torch's thread count (the codec releases the GIL),
and ``Corruption.apply_uint8`` codes stored grey levels without the float round trip. torchvision
deprecated these ops in 0.29; where they are gone, Pillow's codec (the reference's own) does the same.
pixelate reproduces PIL's BOX windows (down and up): one ``embedding_bag`` (weighted sum of gathered
rows) per axis down, row gathers up; on stored grey levels it enlarges the quantised small image in uint8.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shiftlab.shifts import ops
from shiftlab.shifts.base import LUMA, LevelRule, ShiftMeta, register
from shiftlab.shifts.tables import params as table_params


@dataclass(frozen=True, slots=True)
class ScalarParams:
    value: float


def _scalar(name: str) -> object:
    def sample(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> ScalarParams:
        return ScalarParams(float(table_params(name, table, severity)))

    return sample


def apply_contrast(x: torch.Tensor, p: ScalarParams) -> torch.Tensor:
    means = x.mean((2, 3), keepdim=True)
    return (x - means) * p.value + means


def apply_brightness(x: torch.Tensor, p: ScalarParams) -> torch.Tensor:
    v = x.amax(1, keepdim=True)
    v_new = (v + p.value).clamp(0, 1)
    return torch.where(v > 0, x * (v_new / v.clamp_min(1e-30)), v_new.expand_as(x))


def apply_brightness_gray(x: torch.Tensor, p: ScalarParams) -> torch.Tensor:
    """Gray pixels stacked to RGB have V = x and hue-free channels, so luma(brightness) = x + c."""
    return x + p.value


@dataclass(frozen=True, slots=True)
class SaturateParams:
    factor: float
    offset: float


def sample_saturate(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> SaturateParams:
    f, o = table_params("saturate", table, severity)
    return SaturateParams(float(f), float(o))


def apply_saturate(x: torch.Tensor, p: SaturateParams) -> torch.Tensor:
    v = x.amax(1, keepdim=True)
    lo = x.amin(1, keepdim=True)
    delta = v - lo
    s = torch.where(v > 0, delta / v.clamp_min(1e-30), torch.zeros_like(v))
    s_new = (s * p.factor + p.offset).clamp(0, 1)
    # hue fraction t_c = (V - x_c) / delta; skimage gives gray pixels hue 0, i.e. t = (0, 1, 1)
    gray_t = torch.tensor((0.0, 1.0, 1.0), dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    t = torch.where(delta > 0, (v - x) / delta.clamp_min(1e-30), gray_t)
    return v * (1 - s_new * t)


def apply_saturate_gray(x: torch.Tensor, p: SaturateParams) -> torch.Tensor:
    """Gray pixels have S = 0 and skimage's hue 0, i.e. t = (0, 1, 1); so the RGB result is
    (V, V(1 − S'), V(1 − S')) with S' = clip(offset) and its luma V·(1 − (w_G + w_B)·S')."""
    s_new = min(max(p.offset, 0.0), 1.0)
    return x * (1 - (LUMA[1] + LUMA[2]) * s_new)


@dataclass(frozen=True, slots=True)
class JpegParams:
    quality: int


def sample_jpeg(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> JpegParams:
    return JpegParams(int(table_params("jpeg_compression", table, severity)))


def torchvision_jpeg(images: torch.Tensor, quality: int) -> list[torch.Tensor]:
    """JPEG round trip of N×H×W×C uint8 images with torchvision's libjpeg ops (the C×H×W views of
    channels-last memory are what libjpeg reads, so no copy); returns C×H×W uint8 tensors."""
    import warnings

    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

    with warnings.catch_warnings():  # deprecated since 0.29 in favour of TorchCodec: see jpeg_codec
        warnings.simplefilter("ignore", DeprecationWarning)
        encoded = encode_jpeg([img.permute(2, 0, 1) for img in images], quality=quality)
        return decode_jpeg(encoded, mode=ImageReadMode.UNCHANGED)  # type: ignore[no-any-return]


def pillow_jpeg(images: torch.Tensor, quality: int) -> list[torch.Tensor]:
    """The same round trip through Pillow (libjpeg as well; the codec imagecorruptions itself uses),
    one image at a time; the tensors' memory is handed to Pillow as a buffer, not computed on."""
    import io

    from PIL import Image

    out = []
    for img in images:
        buf = io.BytesIO()
        Image.fromarray(img.squeeze(-1).numpy() if img.shape[-1] == 1 else img.numpy()).save(
            buf, format="JPEG", quality=quality)
        decoded = Image.open(buf)
        data = torch.frombuffer(bytearray(decoded.tobytes()), dtype=torch.uint8)
        out.append(data.view(decoded.height, decoded.width, -1).permute(2, 0, 1))
    return out


@functools.cache
def jpeg_codec() -> Callable[[torch.Tensor, int], list[torch.Tensor]]:
    """torchvision's JPEG ops where this torchvision still has them (deprecated since 0.29, to be
    removed in favour of TorchCodec), else Pillow's: the corruption keeps working across versions."""
    try:
        from torchvision.io.image import _has_image_ops

        if _has_image_ops():
            return torchvision_jpeg
    except ImportError:
        pass
    return pillow_jpeg


JPEG_CHUNK_VALUES = 1 << 19  # values per chunk of images a JPEG task converts and codes (stays in cache)
JPEG_VALUES_PER_WORKER = 1 << 18  # below this many values per thread the batch is coded on the calling thread


def jpeg_chunks(n: int, values_per_image: int) -> list[tuple[int, int]]:
    """[start, stop) of the chunks of images one JPEG task handles."""
    step = max(1, JPEG_CHUNK_VALUES // max(values_per_image, 1))
    return [(s, min(s + step, n)) for s in range(0, n, step)]


def jpeg_workers(values: int) -> int:
    """Threads for a JPEG batch: torch's thread count (the caller's share of the machine; 1 inside a
    ``torch_worker_pool``), fewer for small batches, where starting threads costs more than it saves."""
    return max(1, min(torch.get_num_threads(), values // JPEG_VALUES_PER_WORKER))


def run_jpeg_tasks(task: Callable[[int, int], None], n: int, values_per_image: int) -> None:
    """Run ``task(start, stop)`` over the chunks of a batch of n images, on a thread pool when the batch is
    large enough (libjpeg and torch's copies release the GIL; every chunk writes its own images)."""
    chunks = jpeg_chunks(n, values_per_image)
    workers = min(jpeg_workers(n * values_per_image), len(chunks))
    if workers == 1:
        for start, stop in chunks:
            task(start, stop)
        return
    with ops.torch_worker_pool(workers) as pool:
        for future in [pool.submit(task, start, stop) for start, stop in chunks]:
            future.result()


def apply_jpeg(x: torch.Tensor, p: JpegParams) -> torch.Tensor:
    """Per chunk of images: round to uint8 straight into channels-last memory, encode and decode
    (``jpeg_codec``), copy the decoded images into the output and scale (chunks on ``run_jpeg_tasks``'s
    threads; each value's arithmetic is the same whatever the chunking, so the result is too)."""
    n, c, h, w = x.shape
    src = x.detach().cpu()
    out = torch.empty(x.shape, dtype=x.dtype)
    codec = jpeg_codec()

    def task(start: int, stop: int) -> None:
        scaled = torch.mul(src[start:stop], 255).add_(0.5).clamp_(0, 255)  # round half up, then truncate:
        levels = torch.empty(stop - start, h, w, c, dtype=torch.uint8)
        for ch in range(c):  # one plane at a time (long inner loops; a single NCHW -> NHWC copy runs
            levels[..., ch].copy_(scaled[:, ch])  # its inner loop over the 3 channels and is 1.5x slower)
        dst = out[start:stop]
        for img_out, img in zip(dst, codec(levels, p.quality), strict=True):
            img_out.copy_(img)
        dst.div_(255)

    run_jpeg_tasks(task, n, c * h * w)
    return out.to(x.device)


def apply_jpeg_uint8(levels: torch.Tensor, p: JpegParams, to_levels: LevelRule) -> torch.Tensor:
    """``apply_jpeg`` on N×H×W×C uint8 grey levels: encode, decode, no float conversions (the output is
    levels already, so ``to_levels`` has nothing to do)."""
    n, h, w, c = levels.shape
    src = levels.cpu().contiguous()
    out = torch.empty(src.shape, dtype=torch.uint8)
    codec = jpeg_codec()

    def task(start: int, stop: int) -> None:
        for img_out, img in zip(out[start:stop], codec(src[start:stop], p.quality), strict=True):
            img_out.copy_(img.permute(1, 2, 0))

    run_jpeg_tasks(task, n, c * h * w)
    return out.to(levels.device)


@functools.lru_cache(maxsize=256)
def box_windows(in_size: int, out_size: int) -> tuple[tuple[int, int], ...]:
    """[start, stop) of the pixels PIL's BOX filter (Pillow ``precompute_coeffs``, weights 1 where
    -0.5 < u <= 0.5, normalised) averages for every output pixel. For up-sampling (scale < 1) every
    window holds exactly the pixel PIL's NEAREST picks, int((xx + 0.5)·scale), so one rule covers both."""
    scale = in_size / out_size
    fs = max(scale, 1.0)
    windows = []
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        lo = max(int(center - 0.5 * fs + 0.5), 0)
        hi = min(int(center + 0.5 * fs + 0.5), in_size)
        taps = [i for i in range(lo, hi) if -0.5 < (i - center + 0.5) / fs <= 0.5]
        windows.append((taps[0], taps[-1] + 1))
    return tuple(windows)


@functools.lru_cache(maxsize=64)
def box_bags(in_size: int, out_size: int, planes: int, dtype: torch.dtype,
             device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Row indices into a (planes·in_size)-row table, per-row weights and bag offsets of the BOX windows
    for every plane (weights and offsets are None when every window is a single row)."""
    windows = box_windows(in_size, out_size)
    base = torch.arange(planes, device=device)[:, None] * in_size
    if all(b - a == 1 for a, b in windows):
        return (base + torch.tensor([a for a, _ in windows], device=device)[None]).reshape(-1), None, None
    rows = torch.tensor([i for a, b in windows for i in range(a, b)], device=device)
    weights = torch.tensor([1.0 / (b - a) for a, b in windows for _ in range(a, b)], dtype=dtype, device=device)
    starts = torch.tensor([0] + [b - a for a, b in windows][:-1], device=device).cumsum(0)
    offsets = torch.arange(planes, device=device)[:, None] * rows.numel() + starts[None]
    return (base + rows[None]).reshape(-1), weights.repeat(planes), offsets.reshape(-1)


@functools.lru_cache(maxsize=64)
def nearest_index(in_size: int, out_size: int, device: torch.device) -> torch.Tensor:
    """The input pixel of every output pixel when enlarging with BOX (= NEAREST, see box_windows)."""
    return torch.tensor([a for a, _ in box_windows(in_size, out_size)], device=device)


def box_resize_rows(x: torch.Tensor, out_size: int) -> torch.Tensor:
    """PIL BOX resize along dim -2 of …×H×W: every output row is the mean of its window of input rows.

    One ``embedding_bag`` (weighted sum of gathered rows, one fused pass) over the (…·H)×W row table;
    when every window is one row (up-sampling) it is a plain row gather."""
    h, w = x.shape[-2:]
    flat = x.reshape(-1, w)
    index, weights, offsets = box_bags(h, out_size, flat.shape[0] // h, x.dtype, x.device)
    shape = (*x.shape[:-2], out_size, w)
    if weights is None:
        return flat.index_select(0, index).view(shape)
    return F.embedding_bag(index, flat, offsets, mode="sum", per_sample_weights=weights).view(shape)


@dataclass(frozen=True, slots=True)
class PixelateParams:
    factor: float


def sample_pixelate(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> PixelateParams:
    return PixelateParams(float(table_params("pixelate", table, severity)))


def pixelate_small(x: torch.Tensor, p: PixelateParams) -> torch.Tensor:
    """The down-sampled, clipped N×C×int(H·c)×int(W·c) image of pixelate: PIL ``resize(..., BOX)``, rows,
    then columns on the transposed batch (row gathers are far faster than gathers along the contiguous axis)."""
    h, w = x.shape[-2:]
    sh, sw = max(int(h * p.factor), 1), max(int(w * p.factor), 1)
    small = box_resize_rows(x, sh).transpose(-1, -2).contiguous()  # N×C×W×sh
    return box_resize_rows(small, sw).transpose(-1, -2).clamp(0.0, 1.0)  # N×C×sh×sw


def apply_pixelate(x: torch.Tensor, p: PixelateParams) -> torch.Tensor:
    """PIL ``resize((int(W·c), int(H·c)), BOX)`` then back to H×W; imagecorruptions up-samples with
    NEAREST and the original scripts with BOX, which are the same map when enlarging (see box_windows):
    the small image is copied back up (columns, then rows), so the output needs no clipping of its own."""
    h, w = x.shape[-2:]
    small = pixelate_small(x, p)
    return box_resize_rows(small.index_select(-1, nearest_index(small.shape[-1], w, x.device)), h)


def apply_pixelate_uint8(levels: torch.Tensor, p: PixelateParams, to_levels: LevelRule) -> torch.Tensor:
    """``apply_pixelate`` on N×H×W×C grey levels: the small image is computed from levels / 255 as the float
    path does, turned into levels by ``to_levels``, and enlarged by gathering uint8 pixels (enlarging only
    copies pixels, so quantising before it equals quantising after)."""
    h, w = levels.shape[1:3]
    x = levels.permute(0, 3, 1, 2).float().div_(255.0)  # channels-last float: the first resize reads it as is
    small = to_levels(pixelate_small(x, p))  # N×sh×sw×C uint8
    cols = nearest_index(small.shape[2], w, levels.device)
    rows = nearest_index(small.shape[1], h, levels.device)
    return small.index_select(2, cols).index_select(1, rows)  # columns on the small image, then whole rows


@dataclass(frozen=True, slots=True)
class ElasticParams:
    """alpha, sigma: displacement scale and smoothing (pixels); affine: N×2×3 forward affine maps or None;
    noise: N×2×H×W raw displacement noise (rows, cols)."""

    alpha: float
    sigma: float
    affine: torch.Tensor | None
    noise: torch.Tensor


def sample_elastic(shape: tuple[int, ...], severity: int, g: torch.Generator, table: str) -> ElasticParams:
    a, s, aff = table_params("elastic_transform", table, severity)
    n, _, h, w = shape
    if table == "imagenet":  # imagecorruptions: noise ±0.5 % of H, sigma 1 % of H, alpha absolute
        noise = ops.uniform((n, 2, h, w), -0.005 * h, 0.005 * h, g)
        return ElasticParams(float(a), s * h, None, noise)
    size = min(h, w)  # the scripts' IMSIZE
    centre = torch.tensor([h // 2, w // 2], dtype=torch.float64)
    sq = size // 3
    pts1 = torch.stack([centre + sq, torch.stack([centre[0] + sq, centre[1] - sq]), centre - sq])  # 3×2
    pts2 = pts1 + ops.uniform((n, 3, 2), -aff * size, aff * size, g).cpu()
    design = torch.cat([pts1, torch.ones(3, 1, dtype=torch.float64)], 1)  # rows [px, py, 1]
    affine = torch.linalg.solve(design.expand(n, 3, 3), pts2).transpose(1, 2)  # N×2×3: dst = A·src + t
    noise = ops.uniform((n, 2, h, w), -1, 1, g)
    return ElasticParams(a * size, s * size, affine, noise)


def apply_elastic(x: torch.Tensor, p: ElasticParams) -> torch.Tensor:
    n, c, h, w = x.shape
    dev = x.device
    yy, xx = torch.meshgrid(torch.arange(h, dtype=x.dtype, device=dev),
                            torch.arange(w, dtype=x.dtype, device=dev), indexing="ij")
    if p.affine is not None:  # cv2.warpAffine(M) samples src = M⁻¹(dst), bilinear, BORDER_REFLECT_101
        a = p.affine.to(dev, x.dtype)
        inv = torch.linalg.inv(a[:, :, :2])
        dst = torch.stack([xx, yy], -1).reshape(1, -1, 2) - a[:, None, :, 2]
        src = dst @ inv.transpose(1, 2)
        xs, ys = src[..., 0].reshape(n, h, w), src[..., 1].reshape(n, h, w)
        x = ops.bilinear_sample(x, ys, xs, "reflect101")
    noise = p.noise.to(dev, torch.float32)
    if p.sigma > 0:
        k = ops.gaussian_kernel1d(p.sigma, 3.0, torch.float32, dev)
        noise = ops.separable_filter(noise, k, k, "symmetric")
    disp = (noise * p.alpha).to(x.dtype)  # the reference casts the displacement to float32
    return ops.bilinear_sample(x, yy + disp[:, 1], xx + disp[:, 0], "symmetric")


register("brightness", _scalar("brightness"), apply_brightness,  # type: ignore[arg-type]
         ShiftMeta("digital", deterministic=True, rgb_only=True), gray=apply_brightness_gray)
register("contrast", _scalar("contrast"), apply_contrast,  # type: ignore[arg-type]
         ShiftMeta("digital", deterministic=True))
register("elastic_transform", sample_elastic, apply_elastic, ShiftMeta("digital"), chunked=True)
register("pixelate", sample_pixelate, apply_pixelate, ShiftMeta("digital", deterministic=True), in_range=True,
         uint8=apply_pixelate_uint8)
register("jpeg_compression", sample_jpeg, apply_jpeg, ShiftMeta("digital", deterministic=True), in_range=True,
         uint8=apply_jpeg_uint8)
register("saturate", sample_saturate, apply_saturate, ShiftMeta("extra", deterministic=True, rgb_only=True),
         gray=apply_saturate_gray)
