"""Distribution shifts as pure, seeded, batched functions (design contract 2).

``SHIFTS`` holds the 15 benchmark corruptions and 4 extras of Hendrycks & Dietterich 2019
(arXiv:1903.12261); see :mod:`shiftlab.shifts.base` for the contract, tables and grayscale rule.
``TRANSFORMS`` holds the parametric shifts (rotation, translation, canvas placement, Fourier-basis noise;
:mod:`shiftlab.shifts.transforms`) and ``SEQUENCES`` the perturbation sequences of ImageNet-P
(:mod:`shiftlab.shifts.sequences`).
"""

from shiftlab.shifts import blur, digital, fourier, noise, sequences, spatial, weather  # noqa: F401  (registration)
from shiftlab.shifts.base import (
    SEVERITIES,
    SHIFTS,
    TABLES,
    Corruption,
    ShiftMeta,
    apply_shift,
    benchmark_names,
    resolve_table,
)
from shiftlab.shifts.sequences import SEQUENCES, PerturbationSequence
from shiftlab.shifts.transforms import TRANSFORMS, Transform, TransformMeta

__all__ = ["SEVERITIES", "SHIFTS", "TABLES", "Corruption", "ShiftMeta", "apply_shift", "benchmark_names",
           "resolve_table"]
__all__ += ["SEQUENCES", "TRANSFORMS", "PerturbationSequence", "Transform", "TransformMeta"]
