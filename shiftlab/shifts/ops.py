"""Batched tensor primitives shared by the corruptions: padding, separable and 2-D filters,
bilinear resampling, the motion kernel, clipped zoom and the diamond-square plasma fractal.

Each mirrors the numpy/scipy/OpenCV operation the reference generators of Hendrycks & Dietterich
2019 (arXiv:1903.12261) call, so the arithmetic matches; all work on N×C×H×W on any device. For speed on
one CPU core: 1-D filters longer than three taps are banded block-matrix products (BLAS), 2-D kernels of
9 taps or more go through a 5-smooth-length FFT, padding uses ``F.pad``.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import torch
import torch.nn.functional as F


@contextlib.contextmanager
def torch_worker_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A pool of ``workers`` threads, each running torch ops on one thread of its own.

    Work that releases the GIL (torch ops, codecs) runs in parallel on the pool. One torch thread per worker,
    and for the calling thread while the pool lives (it only hands out work and waits), keeps the cores from
    being oversubscribed: torch's OpenMP thread count is per thread, so a worker left at the default would
    start a team of its own, and teams that wait on each other's threads stall. ``torch.set_num_threads``
    also sets MKL's process-wide count, so the caller's count is set again on exit."""
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(max(1, workers), initializer=torch.set_num_threads, initargs=(1,))
    torch.set_num_threads(1)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)


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
    """Pad the last two axes of x (…×H×W) by ph rows and pw columns on each side."""
    if ph == 0 and pw == 0:
        return x
    shape = x.shape
    h, w = shape[-2:]
    y = x if x.ndim == 4 else x.reshape(-1, 1, h, w)
    if mode == "replicate" or (mode == "reflect101" and ph < h and pw < w):
        y = F.pad(y, (pw, pw, ph, ph), mode="replicate" if mode == "replicate" else "reflect")
    elif mode == "symmetric" and ph <= h and pw <= w:
        y = torch.cat([y[..., :ph, :].flip(-2), y, y[..., h - ph:, :].flip(-2)], -2)
        y = torch.cat([y[..., :pw].flip(-1), y, y[..., w - pw:].flip(-1)], -1)
    else:  # pads wider than the image: periodic index maps
        y = y.index_select(-2, pad_index(h, ph, ph, mode, x.device))
        y = y.index_select(-1, pad_index(w, pw, pw, mode, x.device))
    return y.reshape(*shape[:-2], h + 2 * ph, w + 2 * pw)


def gaussian_kernel1d(sigma: float, truncate: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter1d weights: radius int(truncate·σ + 0.5), normalised."""
    radius = int(truncate * float(sigma) + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2) if sigma > 0 else (t == 0).double()
    return (k / k.sum()).to(dtype=dtype, device=device)


def fft_size(n: int) -> int:
    """The smallest 5-smooth length ≥ n (2^a·3^b·5^c, a ≥ 1): fast for the FFT, as cv2.getOptimalDFTSize."""
    m = max(n, 2)
    while True:
        r = m
        for q in (2, 3, 5):
            while r % q == 0:
                r //= q
        if r == 1 and m % 2 == 0:
            return m
        m += 1


def fft_correlate_valid(padded: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """'valid' 2-D correlation of …×Hp×Wp with a kh×kw kernel through the FFT (for large kernels).
    The transform length is the next 5-smooth size; the zero tail never wraps into the valid part."""
    hp, wp = padded.shape[-2:]
    kh, kw = kernel.shape
    nh, nw = fft_size(hp), fft_size(wp)
    work = torch.float64 if padded.dtype == torch.float64 else torch.float32
    flipped = torch.zeros(nh, nw, dtype=work, device=padded.device)
    flipped[:kh, :kw] = kernel.flip(0, 1).to(device=padded.device, dtype=work)
    spec = torch.fft.rfft2(padded.to(work), s=(nh, nw))
    spec.mul_(torch.fft.rfft2(flipped))
    out: torch.Tensor = torch.fft.irfft2(spec, s=(nh, nw))
    return out[..., kh - 1:hp, kw - 1:wp].to(padded.dtype)


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


FFT_MIN_TAPS = 9  # 2-D kernels at least this wide are applied through the FFT (as OpenCV's filter2D does)
SHIFT_MAX_TAPS = 3  # 1-D kernels up to this length are shifted-slice sums; longer ones banded matrix products
BAND_BLOCK = 32  # output rows/columns per banded block


def band_matrix(k: torch.Tensor, block: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(block + K - 1) × block matrix T with T[o + t, o] = k[t]: a window of block + K - 1 samples times T
    is the 'valid' correlation of that window with k."""
    taps = k.numel()
    j = torch.arange(block + taps - 1, device=device)[:, None] - torch.arange(block, device=device)[None, :]
    vals = k.to(device=device, dtype=dtype)[j.clamp(0, taps - 1)]
    return torch.where((j >= 0) & (j < taps), vals, torch.zeros((), dtype=dtype, device=device))


def shifted_sum(x: torch.Tensor, k: torch.Tensor, n: int) -> torch.Tensor:
    """Σ_t k[t]·x[:, t:t + n]: 'valid' correlation along dim 1 as shifted slices (short kernels; dim 1 is the
    rows of P×Hp×W in correlate_rows and the columns of R×Wp in correlate_cols)."""
    out = x[:, 0:n] * float(k[0])
    for t in range(1, k.numel()):
        out.add_(x[:, t:t + n], alpha=float(k[t]))
    return out


def band_blocks(n: int) -> list[tuple[int, int]]:
    """[start, stop) of the blocks of BAND_BLOCK outputs that one banded GEMM each computes."""
    return [(s, min(s + BAND_BLOCK, n)) for s in range(0, n, BAND_BLOCK)]


def correlate_rows(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """'valid' correlation along dim -2 of P×Hp×W with a 1-D kernel -> P×(Hp-K+1)×W.

    Short kernels are sums of shifted slices. Longer ones are products with a banded block matrix, one
    batched GEMM per block of BAND_BLOCK output rows (≈ (BAND_BLOCK + K - 1) multiply-adds per output
    at BLAS speed, instead of K memory-bound passes or a 2-D FFT)."""
    taps = k.numel()
    h = x.shape[-2] - taps + 1
    if taps <= SHIFT_MAX_TAPS:
        return shifted_sum(x, k, h)
    band = band_matrix(k, BAND_BLOCK, x.dtype, x.device).t()
    blocks = band_blocks(h)
    if x.requires_grad:  # out= does not record gradients
        return torch.cat([band[:e - s, :e - s + taps - 1] @ x[:, s:e + taps - 1] for s, e in blocks], 1)
    out = torch.empty(x.shape[0], h, x.shape[-1], dtype=x.dtype, device=x.device)
    for s, e in blocks:
        torch.matmul(band[:e - s, :e - s + taps - 1], x[:, s:e + taps - 1], out=out[:, s:e])
    return out


def correlate_cols(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """'valid' correlation along the last dim of R×Wp with a 1-D kernel -> R×(Wp-K+1) (as correlate_rows)."""
    taps = k.numel()
    w = x.shape[-1] - taps + 1
    if taps <= SHIFT_MAX_TAPS:
        return shifted_sum(x, k, w)
    band = band_matrix(k, BAND_BLOCK, x.dtype, x.device)
    blocks = band_blocks(w)
    if x.requires_grad:
        return torch.cat([x[:, s:e + taps - 1] @ band[:e - s + taps - 1, :e - s] for s, e in blocks], 1)
    out = torch.empty(x.shape[0], w, dtype=x.dtype, device=x.device)
    for s, e in blocks:
        torch.mm(x[:, s:e + taps - 1], band[:e - s + taps - 1, :e - s], out=out[:, s:e])
    return out


def separable_filter(x: torch.Tensor, kh: torch.Tensor, kw: torch.Tensor, mode: PadMode) -> torch.Tensor:
    """Correlate every channel of ``x`` (…×H×W) with kh along H and kw along W (one padding, two 1-D passes)."""
    shape = x.shape
    h, w = shape[-2:]
    rh, rw = kh.numel() // 2, kw.numel() // 2
    y = pad2d(x.reshape(-1, 1, h, w), rh, rw, mode).reshape(-1, h + 2 * rh, w + 2 * rw)
    y = correlate_rows(y, kh.to(y.dtype))
    y = correlate_cols(y.reshape(-1, w + 2 * rw), kw.to(y.dtype))
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


def motion_taps(n: int, radius: int, sigma: float, angle_deg: torch.Tensor,
                h: int, w: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """imagecorruptions' ``_motion_blur`` kernel per image: tap i has the one-sided Gaussian weight
    k[i] and the shift (dy, dx) = -ceil(i·(sin a, cos a) - 1/2); taps stop (weight 0) from the first
    one whose shift leaves the image. Returns weights (N×width float64, CPU), dy and dx (N×width long)."""
    width = 2 * int(radius) + 1
    k = torch.exp(-torch.arange(width, dtype=torch.float64) ** 2 / (2 * float(sigma) ** 2))
    k = k / k.sum()
    a = torch.deg2rad(angle_deg.double().cpu())
    i = torch.arange(width, dtype=torch.float64)
    dy = -torch.ceil(i[None] * torch.sin(a)[:, None] - 0.5).long()  # N × width
    dx = -torch.ceil(i[None] * torch.cos(a)[:, None] - 0.5).long()
    alive = ((dy.abs() < h) & (dx.abs() < w)).long().cumprod(1).bool()
    weights = torch.where(alive, k[None].expand(n, -1), torch.zeros((), dtype=torch.float64))
    return weights, dy, dx


MOTION_RUN_VALUES = 1 << 18  # CPU motion blur: images per chunk so that a chunk's padded values stay in cache


def motion_blur(x: torch.Tensor, radius: int, sigma: float, angle_deg: torch.Tensor,
                fft: bool | None = None) -> torch.Tensor:
    """imagecorruptions' ``_motion_blur``: a one-sided Gaussian-weighted sum of shifted copies
    (edge-replicating shifts) along a per-image angle; taps stop where the shift leaves the image.

    A clamped shift by at most the pad is a slice of the replicate-padded image, so the result is exact up
    to floating-point rounding on both paths. On CPU the images are sorted by angle: tap i then shifts
    every image of a run of neighbouring angles by the same (dy, dx), so each run is one slice addition
    over several images (a few hundred additions per chunk of images instead of width per image; chunks
    of MOTION_RUN_VALUES padded values stay in cache). Elsewhere the batch is one FFT convolution with
    per-image sparse line kernels (no per-image loop on a GPU). ``fft`` forces one path (None: by device).
    """
    n, c, h, w = x.shape
    weights, dy, dx = motion_taps(n, radius, sigma, angle_deg, h, w)
    work = torch.float64 if x.dtype == torch.float64 else torch.float32
    live = weights > 0
    r = int(torch.maximum(dy.abs(), dx.abs())[live].max()) if bool(live.any()) else 0
    use_fft = x.device.type != "cpu" if fft is None else fft
    if not use_fft:
        step = max(1, MOTION_RUN_VALUES // max(c * (h + 2 * r) * (w + 2 * r), 1))  # images per chunk
        # sorting pays off when a chunk holds several images (large images: one image per chunk, no runs)
        order = torch.argsort(angle_deg.double().cpu(), stable=True) if step > 1 else torch.arange(n)
        src = x.to(work).index_select(0, order.to(x.device)) if step > 1 else x.to(work)
        padded = pad2d(src, r, r, "replicate")
        out = torch.zeros(n, c, h, w, dtype=work, device=x.device)
        # runs: per tap, the maximal ranges of sorted images (within a chunk) whose slice origin is the same
        span = 2 * r + 1
        code = torch.where(live, (r - dy) * span + (r - dx), torch.full_like(dy, -1))[order].t()  # taps × images
        first = torch.ones_like(code, dtype=torch.bool)
        first[:, 1:] = code[:, 1:] != code[:, :-1]
        first[:, ::step] = True
        tap, start = first.nonzero(as_tuple=True)
        stop = torch.cat([start[1:], start.new_full((1,), n)])
        stop = torch.where(stop > start, stop, torch.full_like(stop, n))  # the last run of a tap ends at n
        stop = torch.minimum(stop, (start // step + 1) * step)
        chunk = start // step
        runs = torch.stack([chunk, tap, start, stop, code[tap, start]], 1)
        runs = runs[runs[:, 4] >= 0]
        runs = runs[torch.argsort(runs[:, 0] * code.shape[0] + runs[:, 1], stable=True)]  # chunk by chunk
        tap_weight = weights.amax(0).tolist()
        for _, t, a, b, origin in runs.tolist():
            oy, ox = divmod(origin, span)
            out[a:b].add_(padded[a:b, :, oy:oy + h, ox:ox + w], alpha=tap_weight[t])
        if step > 1:
            out = torch.empty_like(out).index_copy_(0, order.to(x.device), out)
        return out.to(x.dtype)
    padded = pad2d(x.to(work), r, r, "replicate")
    hp, wp = h + 2 * r, w + 2 * r
    kern = torch.zeros(n, hp, wp, dtype=torch.float64)
    width = weights.shape[1]
    kern.index_put_((torch.arange(n)[:, None].expand(-1, width), dy % hp, dx % wp), weights, accumulate=True)
    spec = torch.fft.rfft2(padded) * torch.fft.rfft2(kern.to(device=x.device, dtype=work))[:, None]
    spatial: torch.Tensor = torch.fft.irfft2(spec, s=(hp, wp))
    return spatial[..., r:r + h, r:r + w].to(x.dtype)


def clipped_zoom(x: torch.Tensor, factor: float, center_trim: bool) -> torch.Tensor:
    """Zoom into the centre of every image of N×C×H×W by ``factor`` (same for the batch; deterministic).

    As the reference's ``clipped_zoom``: crop the ceil(H/z)×ceil(W/z) centre, resize it linearly to
    round(crop·z) with scipy.ndimage.zoom's align-corners mapping (= ``F.interpolate(bilinear,
    align_corners=True)``), then keep the first H×W pixels (imagecorruptions) or the centred ones
    (the cifar/tiny scripts, ``center_trim``)."""
    h, w = x.shape[-2:]
    ch, cw = int(math.ceil(h / float(factor))), int(math.ceil(w / float(factor)))
    top, left = (h - ch) // 2, (w - cw) // 2
    oh, ow = int(round(ch * factor)), int(round(cw * factor))
    crop = x[..., top:top + ch, left:left + cw]
    zoomed = F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)
    sh, sw = ((oh - h) // 2, (ow - w) // 2) if center_trim else (0, 0)
    return zoomed[..., sh:sh + h, sw:sw + w]


def zoom_taps(size: int, factor: float, center_trim: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Along one axis of length ``size``, ``clipped_zoom``'s linear interpolation as (lower source index,
    upper source index, weight of the upper one) per output position, float64 (F.interpolate's
    align_corners mapping; the upper index is the lower one at the last source pixel)."""
    crop = int(math.ceil(size / float(factor)))
    start = (size - crop) // 2
    zoomed = int(round(crop * factor))
    shift = (zoomed - size) // 2 if center_trim else 0
    scale = (crop - 1) / (zoomed - 1) if zoomed > 1 else 0.0
    src = (torch.arange(size, dtype=torch.float64) + shift) * scale
    low = src.floor().long().clamp_(0, crop - 1)
    high = (low + 1).clamp_(max=crop - 1)
    return start + low, start + high, src - low


@functools.lru_cache(maxsize=10)
def zoom_bags(h: int, w: int, factors: tuple[float, ...], center_trim: bool, dtype: torch.dtype,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """zoom_blur's whole operator, (x + Σ_z clipped_zoom(x, z)) / (Z + 1), as one weighted sum of source
    pixels per output pixel: (source indices, weights, bag offsets) into the (H·W)-row pixel table, for
    ``F.embedding_bag``. The Z zooms' 4 bilinear taps per pixel collapse onto few distinct sources (at
    32 px and Z = 26, about a dozen instead of 105), whose weights are summed in float64."""
    out_idx, src_idx, wts = [torch.arange(h * w)], [torch.arange(h * w)], [torch.ones(h * w, dtype=torch.float64)]
    for z in factors:
        r0, r1, fr = zoom_taps(h, z, center_trim)
        c0, c1, fc = zoom_taps(w, z, center_trim)
        for rows, wr in ((r0, 1 - fr), (r1, fr)):
            for cols, wc in ((c0, 1 - fc), (c1, fc)):
                out_idx.append(torch.arange(h * w))
                src_idx.append((rows[:, None] * w + cols[None, :]).reshape(-1))
                wts.append((wr[:, None] * wc[None, :]).reshape(-1))
    pairs = torch.cat(out_idx) * (h * w) + torch.cat(src_idx)
    unique, inverse = torch.unique(pairs, return_inverse=True)  # sorted by output pixel, then source
    weight = torch.zeros(unique.numel(), dtype=torch.float64).index_add_(0, inverse, torch.cat(wts))
    keep = weight != 0
    unique, weight = unique[keep], weight[keep] / (len(factors) + 1)
    counts = torch.bincount(unique // (h * w), minlength=h * w)
    offsets = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)[:-1]])
    index = (unique % (h * w)).to(device=device, dtype=torch.int32)  # int32 halves the cached memory
    return index, weight.to(device=device, dtype=dtype), offsets.to(device=device, dtype=torch.int32)


def zoom_blur_sum(x: torch.Tensor, factors: tuple[float, ...], center_trim: bool) -> torch.Tensor:
    """(x + Σ_z clipped_zoom(x, z, center_trim)) / (Z + 1) for N×C×H×W x, as one ``embedding_bag`` over
    the pixels (rows: pixels, columns: every image's channels; exact up to float rounding)."""
    n, c, h, w = x.shape
    index, weights, offsets = zoom_bags(h, w, tuple(factors), center_trim, x.dtype, x.device)
    table = x.reshape(n * c, h * w).t().contiguous()
    out = F.embedding_bag(index, table, offsets, mode="sum", per_sample_weights=weights)
    return out.t().reshape(n, c, h, w).contiguous()


def plasma_fractal(n: int, mapsize: int, wibbledecay: float, generator: torch.Generator) -> torch.Tensor:
    """Diamond-square height maps in [0, 1], N×mapsize×mapsize, float32, on the generator's device
    (the ``plasma_fractal`` of the reference scripts, batched)."""
    dev = generator.device
    m = torch.zeros(n, mapsize, mapsize, dtype=torch.float32, device=dev)
    step = mapsize
    wibble = 100.0

    def wibbled_mean(a: torch.Tensor) -> torch.Tensor:  # a / 4 + wibble·U(-wibble, wibble), in place on a
        u = torch.rand(a.shape, generator=generator, device=dev, dtype=torch.float32)
        return a.mul_(0.25).add_(u, alpha=2 * wibble * wibble).sub_(wibble * wibble)

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
    """Normal(loc, scale) in float32 on the generator's device (torch's vectorised float32 sampler is
    about five times faster than float64 on CPU; every caller works in float32)."""
    return loc + scale * torch.randn(shape, generator=generator, device=generator.device, dtype=torch.float32)
