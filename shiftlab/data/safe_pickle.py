"""A restricted unpickler for data formats that are pickles by definition (CIFAR batches).

Only plain containers, bytes/str/numbers and numpy arrays may be rebuilt; any other global
(the way a malicious pickle runs code) is refused, so reading a dataset never runs its code.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
    ("builtins", "bytearray"),
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler whose ``find_class`` only admits numpy array reconstruction."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a data file")


def safe_load(data: bytes, encoding: str = "latin1") -> Any:
    """Unpickle ``data`` allowing only containers, scalars and numpy arrays."""
    return SafeUnpickler(io.BytesIO(data), encoding=encoding).load()
