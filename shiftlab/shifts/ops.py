"""Batched tensor primitives shared by the corruptions: padding, separable and 2-D filters,
bilinear resampling, the motion kernel, clipped zoom and the diamond-square plasma fractal.

Each mirrors the numpy/scipy/OpenCV operation the reference generators of Hendrycks & Dietterich
2019 (arXiv:1903.12261) call, so the arithmetic matches; all work on N×C×H×W on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

PadMode = str  # "replicate" (scipy 'nearest'), "reflect101" (OpenCV default), "symmetric" (scipy 'reflect')


def pad_index(n: int, before: int, after: int, mode: PadMode, device: torch.device) -> torch.Tensor:
    """Source indices of a padded axis of length n for a boundary mode."""
    i = torch.arange(-before, n + after, device=device)
    if mode == "replicate":
        return i.clamp(0, n - 1)
    if mode == "symmetric":  # d c b a | a b c d | d c b a
        period = 2 * n
        i = i % period
        return torch.where(i >= n, period - 1 - i, i)
    if mode == "reflect101":  # d c b | a b c d | c b a
        if n == 1:
            return torch.zeros_like(i)
        period = 2 * n - 2
        i = i % period
        return torch.where(i >= n, period - i, i)
    raise ValueError(f"unknown pad mode {mode}")


def pad2d(x: torch.Tensor, ph: int, pw: int, mode: PadMode) -> torch.Tensor:
    h, w = x.shape[-2:]
    x = x.index_select(-2, pad_index(h, ph, ph, mode, x.device))
    return x.index_select(-1, pad_index(w, pw, pw, mode, x.device))


def gaussian_kernel1d(sigma: float, truncate: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter1d weights: radius int(truncate·σ + 0.5), normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2) if sigma > 0 else (t == 0).double()
    return (k / k.sum()).to(dtype=dtype, device=device)


def fft_correlate_valid(padded: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """'valid' 2-D correlation of …×Hp×Wp with a kh×kw kernel through the FFT (for large kernels)."""
    hp, wp = padded.shape[-2:]
    kh, kw = kernel.shape
    work = torch.float64 if padded.dtype == torch.float64 else torch.float32
    flipped = torch.zeros(hp, wp, dtype=work, device=padded.device)
    flipped[:kh, :kw] = kernel.flip(0, 1).to(work)
    out = torch.fft.irfft2(torch.fft.rfft2(padded.to(work)) * torch.fft.rfft2(flipped), s=(hp, wp))
    return out[..., kh - 1:, kw - 1:].to(padded.dtype)


def shift_sum(padded: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """'valid' correlation with a small kh×kw kernel as a sum of shifted slices (faster than a
    one-channel conv2d on CPU for a few taps)."""
    kh, kw = kernel.shape
    h, w = padded.shape[-2] - kh + 1, padded.shape[-1] - kw + 1
    out = torch.zeros((*padded.shape[:-2], h, w), dtype=padded.dtype, device=padded.device)
    for i, row in enumerate(kernel.tolist()):
        for j, wgt in enumerate(row):
            if wgt != 0:
                out.add_(padded[..., i:i + h, j:j + w], alpha=wgt)
    return out


FFT_MIN_TAPS = 9  # kernels at least this wide are applied through the FFT (as OpenCV's filter2D does for large ones)


def separable_filter(x: torch.Tensor, kh: torch.Tensor, kw: torch.Tensor, mode: PadMode) -> torch.Tensor:
    """Correlate every channel of ``x`` (…×H×W) with kh along H and kw along W."""
    shape = x.shape
    y = x.reshape(-1, 1, *shape[-2:])
    rh, rw = kh.numel() // 2, kw.numel() // 2
    y = pad2d(y, rh, rw, mode)
    if max(kh.numel(), kw.numel()) >= FFT_MIN_TAPS:
        return fft_correlate_valid(y, torch.outer(kh.double(), kw.double())).reshape(shape)
    y = shift_sum(y, kh.to(y.dtype).view(-1, 1))
    y = shift_sum(y, kw.to(y.dtype).view(1, -1))
    return y.reshape(shape)


def gaussian_blur(x: torch.Tensor, sigma: float, truncate: float = 4.0, mode: PadMode = "replicate") -> torch.Tensor:
    """skimage.filters.gaussian (scipy gaussian_filter) per channel; default boundary 'nearest'."""
    k = gaussian_kernel1d(sigma, truncate, x.dtype, x.device)
    return separable_filter(x, k, k, mode)


def filter2d(x: torch.Tensor, kernel: torch.Tensor, mode: PadMode = "reflect101") -> torch.Tensor:
    """cv2.filter2D (correlation, BORDER_REFLECT_101) per channel with an odd square kernel."""
    shape = x.shape
    r = kernel.shape[-1] // 2
    y = pad2d(x.reshape(-1, 1, *shape[-2:]), r, r, mode)
    if kernel.shape[-1] >= FFT_MIN_TAPS:
        return fft_correlate_valid(y, kernel).reshape(shape)
    return shift_sum(y, kernel.to(y.dtype)).reshape(shape)


def cv2_gaussian_kernel(ksize: int, sigma: float) -> torch.Tensor:
    """cv2.getGaussianKernel for sigma > 0 (float64)."""
    t = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    k = torch.exp(-(t**2) / (2 * sigma * sigma))
    return k / k.sum()


def bilinear_sample(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, mode: PadMode) -> torch.Tensor:
    """Bilinear interpolation of x (N×C×H×W) at per-pixel coordinates ys, xs (N×H'×W'), out-of-range
    positions reflected: ``"symmetric"`` about the image edges (scipy map_coordinates mode='reflect'),
    ``"reflect101"`` about the border pixel centres (cv2 BORDER_REFLECT_101). One ``grid_sample``."""
    h, w = x.shape[-2:]
    if mode == "reflect101":
        gx = 2 * xs / max(w - 1, 1) - 1
        gy = 2 * ys / max(h - 1, 1) - 1
        align = True
    elif mode == "symmetric":
        gx = (2 * xs + 1) / w - 1
        gy = (2 * ys + 1) / h - 1
        align = False
    else:
        raise ValueError(f"unsupported mode {mode}")
    grid = torch.stack([gx, gy], -1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=align)


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angle_deg: torch.Tensor) -> torch.Tensor:
    """imagecorruptions' ``_motion_blur``: a one-sided Gaussian-weighted sum of shifted copies
    (edge-replicating shifts) along a per-image angle; taps stop where the shift leaves the image.

    Batched as one FFT convolution of the replicate-padded batch with per-image sparse line kernels
    (exact up to floating-point rounding: a clamped shift by at most the pad is a slice of the padded image).
    """
    n, c, h, w = x.shape
    width = 2 * int(radius) + 1
    k = torch.exp(-torch.arange(width, dtype=torch.float64) ** 2 / (2 * float(sigma) ** 2))
    k = k / k.sum()
    a = torch.deg2rad(angle_deg.double().cpu())
    i = torch.arange(width, dtype=torch.float64)
    dy = -torch.ceil(i[None] * torch.sin(a)[:, None] - 0.5).long()  # N × width
    dx = -torch.ceil(i[None] * torch.cos(a)[:, None] - 0.5).long()
    alive = ((dy.abs() < h) & (dx.abs() < w)).long().cumprod(1).bool()
    r = width  # |dy|, |dx| <= width - 1
    hp, wp = h + 2 * r, w + 2 * r
    kern = torch.zeros(n, hp, wp, dtype=torch.float64)
    weights = torch.where(alive, k[None].expand(n, -1), torch.zeros(()))
    kern.index_put_((torch.arange(n)[:, None].expand(-1, width), dy % hp, dx % wp), weights, accumulate=True)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    padded = pad2d(x.to(work), r, r, "replicate")
    spec = torch.fft.rfft2(padded) * torch.fft.rfft2(kern.to(device=x.device, dtype=work))[:, None]
    out = torch.fft.irfft2(spec, s=(hp, wp))
    return out[..., r:r + h, r:r + w].to(x.dtype)


def zoom_coords(size: int, factor: float, center_trim: bool, device: torch.device) -> torch.Tensor:
    """Source coordinates of ``clipped_zoom`` along one axis: crop ceil(size/z) centred pixels, then
    scipy.ndimage.zoom (order 1, output round(crop·z), align-corners mapping). imagecorruptions keeps the
    first ``size`` outputs; the original scripts (center_trim) keep the centred ones."""
    ch = int(math.ceil(size / float(factor)))
    top = (size - ch) // 2
    out = int(round(ch * factor))
    scale = (ch - 1) / (out - 1) if out > 1 else 0.0
    start = (out - size) // 2 if center_trim else 0
    o = torch.arange(start, start + size, dtype=torch.float64, device=device)
    return top + o * scale


def interp_axis(x: torch.Tensor, coords: torch.Tensor, dim: int) -> torch.Tensor:
    """Linear interpolation of ``x`` along ``dim`` at shared coordinates (clamped to the axis)."""
    n = x.shape[dim]
    c0 = torch.floor(coords).long().clamp(0, n - 1)
    c1 = (c0 + 1).clamp(max=n - 1)
    wgt = (coords - c0.to(coords.dtype)).to(x.dtype)
    shape = [1] * x.ndim
    shape[dim] = -1
    wgt = wgt.view(shape)
    return x.index_select(dim, c0) * (1 - wgt) + x.index_select(dim, c1) * wgt


def clipped_zoom(x: torch.Tensor, factor: float, center_trim: bool, out_h: int | None = None) -> torch.Tensor:
    """Zoom into the centre of every image by ``factor`` (same for the batch; deterministic)."""
    h, w = x.shape[-2:]
    ys = zoom_coords(h, factor, center_trim, x.device)
    xs = zoom_coords(w, factor, center_trim, x.device)
    return interp_axis(interp_axis(x, ys, -2), xs, -1)


def plasma_fractal(n: int, mapsize: int, wibbledecay: float, generator: torch.Generator) -> torch.Tensor:
    """Diamond-square height maps in [0, 1], N×mapsize×mapsize, float32, on the generator's device
    (the ``plasma_fractal`` of the reference scripts, batched)."""
    dev = generator.device
    m = torch.zeros(n, mapsize, mapsize, dtype=torch.float32, device=dev)
    step = mapsize
    wibble = 100.0

    def wibbled_mean(a: torch.Tensor) -> torch.Tensor:
        u = torch.rand(a.shape, generator=generator, device=dev, dtype=torch.float32)
        return a / 4 + wibble * (u * 2 * wibble - wibble)

    while step >= 2:
        half = step // 2
        corner = m[:, 0:mapsize:step, 0:mapsize:step]
        sq = corner + torch.roll(corner, -1, 1)
        sq = sq + torch.roll(sq, -1, 2)
        m[:, half:mapsize:step, half:mapsize:step] = wibbled_mean(sq)
        dr = m[:, half:mapsize:step, half:mapsize:step]
        ul = m[:, 0:mapsize:step, 0:mapsize:step]
        lt = dr + torch.roll(dr, 1, 1) + ul + torch.roll(ul, -1, 2)
        m[:, 0:mapsize:step, half:mapsize:step] = wibbled_mean(lt)
        tt = dr + torch.roll(dr, 1, 2) + ul + torch.roll(ul, -1, 1)
        m[:, half:mapsize:step, 0:mapsize:step] = wibbled_mean(tt)
        step //= 2
        wibble /= wibbledecay
    m = m - m.amin((1, 2), keepdim=True)
    return m / m.amax((1, 2), keepdim=True)


def next_power_of_2(v: int) -> int:
    return 1 if v == 0 else 2 ** (v - 1).bit_length()


def uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    """U[low, high) in float64 on the generator's device."""
    u = torch.rand(shape, generator=generator, device=generator.device, dtype=torch.float64)
    return low + (high - low) * u


def normal(shape: tuple[int, ...], loc: float, scale: float, generator: torch.Generator) -> torch.Tensor:
    return loc + scale * torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float64)
