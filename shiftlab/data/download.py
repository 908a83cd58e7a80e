"""Downloading dataset files, only when asked (``--download``), each verified against its published
checksum before it is used; a file that does not match is deleted and reported, never read."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from shiftlab.core.errors import DatasetNotFoundError

CACHE = Path("~/.cache/shiftlab/data")


def md5_of(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def retrieve(url: str, target: Path) -> None:
    """Fetch ``url`` into ``target`` (the one place that touches the network)."""
    urllib.request.urlretrieve(url, target)  # noqa: S310 - https/http URLs from this module's tables only


def fetch_files(base_url: str, files: Sequence[tuple[str, str]], root: Path) -> None:
    """Download every missing ``(name, md5)`` of ``files`` from ``base_url`` into ``root``, verified."""
    root.mkdir(parents=True, exist_ok=True)
    for name, md5 in files:
        target = root / name
        if target.exists() and md5_of(target) == md5:
            continue
        part = root / f".{name}.part"
        try:
            retrieve(base_url + name, part)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise DatasetNotFoundError(f"downloading {base_url + name} failed: {exc}") from None
        got = md5_of(part)
        if got != md5:
            part.unlink()
            raise DatasetNotFoundError(f"{name} from {base_url} has checksum {got}, expected {md5}; nothing was kept")
        part.replace(target)
