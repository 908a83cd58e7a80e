"""``shiftlab corrupt``: a corrupted copy of a dataset split on disk, in the CIFAR-10-C layout
(``data/corrupted_files.py`` reads it back).

The images are the evaluation's: block b of (corruption, severity, table) is corrupted with the
generator of (seed, cell identity, b) (``evaluation/corrupted.py``), so the files hold exactly the
images ``shiftlab evaluate --suite corruptions`` scores with the same seed, whatever the batch size or
the number of worker threads. Grey levels are truncated by default, as the reference datasets'
``np.uint8(...)`` does (Hendrycks & Dietterich 2019); ``quantize="round"`` stores the nearest level.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import torch

from shiftlab.core.identity import CorruptionCell
from shiftlab.data import ImageDataset
from shiftlab.data.corrupted_files import META_FILE, Quantize, check_quantize, grey_levels, write_grey_levels
from shiftlab.evaluation.blocks import block_ranges
from shiftlab.evaluation.corrupted import cell_generator, data_block_size
from shiftlab.shifts import SHIFTS, resolve_table
from shiftlab.shifts.ops import torch_worker_pool


def export_corrupted(dataset: ImageDataset, out: Path, corruptions: Sequence[str], severities: Sequence[int],
                     seed: int, table: str | None, source: str = "", quantize: Quantize = "truncate",
                     workers: int | None = None) -> list[Path]:
    """Write ``dataset`` corrupted by each corruption at each severity in the CIFAR-10-C layout.

    Every (corruption, severity, block) is one task on ``workers`` threads (default: torch's thread
    count), each running torch on one thread. When the dataset holds its images as grey levels
    (``ImageDataset.get_levels``), corruptions with a uint8 path (``Corruption.apply_uint8``: JPEG,
    pixelate) work on those levels directly, with the same result as the float path quantised by
    ``quantize``. At most two blocks are in memory.
    Returns the written ``<corruption>.npy`` paths.
    """
    quantize = check_quantize(quantize)
    out.mkdir(parents=True, exist_ok=True)
    h, w = dataset.info.image_size
    tname = resolve_table(table, h, w)
    n = len(dataset)
    shape = (len(severities) * n, h, w, dataset.info.channels)
    fns = {name: SHIFTS.get(name) for name in corruptions}
    files = {name: np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=np.uint8, shape=shape)
             for name in corruptions}
    needs_levels = any(fn.uint8_applier is not None for fn in fns.values())
    all_coded = all(fn.uint8_applier is not None for fn in fns.values())  # no float images when levels are stored

    def to_levels(y: torch.Tensor) -> torch.Tensor:
        return grey_levels(y, quantize)

    def corrupt_block(cell: CorruptionCell, k: int, b: int, x: torch.Tensor | None, levels: torch.Tensor | None,
                      start: int, count: int) -> None:
        fn = fns[cell.corruption]
        c, (h, w) = dataset.info.channels, dataset.info.image_size
        like = x if x is not None else torch.zeros(()).expand(count, c, h, w)  # the shape is all params need
        params = fn.sample_params(like, cell.severity, cell_generator(cell, seed, b, like.device), cell.table)
        dst = torch.from_numpy(files[cell.corruption][k * n + start:k * n + start + count])
        coded = fn.apply_uint8(levels, params, to_levels) if levels is not None else None
        if coded is not None:
            dst.copy_(coded)
            return
        assert x is not None
        y = fn.apply(x, params)
        if y.untyped_storage().data_ptr() == x.untyped_storage().data_ptr():
            y = y.clone()  # never scale the block the other tasks read
        write_grey_levels(y, dst, quantize)

    cells = [(CorruptionCell(name, int(s), tname), k) for name in corruptions for k, s in enumerate(severities)]
    with torch_worker_pool(torch.get_num_threads() if workers is None else workers) as pool:
        in_flight: deque[list[Future[None]]] = deque()
        for b, (start, stop) in enumerate(block_ranges(n, data_block_size(dataset))):
            index = torch.arange(start, stop)
            levels = dataset.get_levels(index) if needs_levels else None
            x = None if all_coded and levels is not None else dataset.get_batch(index)[0]
            in_flight.append([pool.submit(corrupt_block, cell, k, b, x, levels, start, stop - start)
                              for cell, k in cells])
            while len(in_flight) > 1:  # at most two blocks in memory
                for future in in_flight.popleft():
                    future.result()
        for futures in in_flight:
            for future in futures:
                future.result()
    written = []
    for name in corruptions:
        files[name].flush()
        written.append(out / f"{name}.npy")
    files.clear()
    np.save(out / "labels.npy", np.tile(dataset.labels.numpy().astype(np.int64), len(severities)))
    info = dataset.info
    (out / META_FILE).write_text(json.dumps({
        "source": source, "n": n, "severities": list(severities), "table": tname, "seed": seed,
        "quantize": quantize, "corruptions": list(corruptions),
        "info": {"num_classes": info.num_classes, "class_names": list(info.class_names),
                 "mean": list(info.mean), "std": list(info.std)},
        "paper": "Hendrycks & Dietterich 2019, arXiv:1903.12261",
    }, indent=2))
    return written
