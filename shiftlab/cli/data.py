"""``shiftlab corrupt``: write a corrupted copy of a dataset split in the CIFAR-10-C file layout."""

from __future__ import annotations

from pathlib import Path

import typer

from shiftlab.cli.common import command, console


@command()
def corrupt(
    dataset: str = typer.Option(..., help="dataset to corrupt (see `shiftlab list datasets`)"),
    split: str = typer.Option("test", help="train, val or test"),
    out: Path = typer.Option(..., help="directory for <corruption>.npy + labels.npy (CIFAR-10-C layout)"),
    data_root: Path = typer.Option(None, help="where the dataset's files are"),
    download: bool = typer.Option(False, help="download the dataset when it is missing (checksums verified)"),
    limit: int = typer.Option(None, help="only the first N images"),
    corruptions: str = typer.Option(None, help="comma-separated corruption names (default: all 19)"),
    severities: str = typer.Option(None, help="comma-separated severities (default: 1,2,3,4,5)"),
    seed: int = typer.Option(0),
    params: str = typer.Option(None, help="corruption parameter table: cifar, tiny or imagenet (default: by size)"),
    quantize: str = typer.Option("truncate", help="grey levels: truncate (as the reference CIFAR-10-C/ImageNet-C "
                                 "files were written) or round (nearest level)"),
) -> None:
    """Write a corrupted copy of a dataset split in the CIFAR-10-C layout (read back with `corrupted-files`)."""
    from shiftlab.data import load_dataset
    from shiftlab.data.corrupted_files import check_quantize
    from shiftlab.evaluation.export import export_corrupted
    from shiftlab.evaluation.grid import CORRUPTIONS, PARAMS, SEVERITIES_FLAG
    from shiftlab.shifts import SEVERITIES, SHIFTS

    names = list(CORRUPTIONS.parse(corruptions) if corruptions else SHIFTS.names())
    sevs = list(SEVERITIES_FLAG.parse(severities) if severities else SEVERITIES)
    table = PARAMS.parse(params) if params else None
    mode = check_quantize(quantize)
    ds = load_dataset(dataset, split, root=data_root, limit=limit, download=download)
    written = export_corrupted(ds, out, names, sevs, seed, table, source=f"{dataset}:{split}",
                               quantize=mode)
    console.print(f"wrote {len(written)} corruption file(s) × {len(sevs)} severities of {len(ds)} images to {out}",
                  highlight=False)
