"""Test-time adaptation: adapters that adapt a copy of a model to the test data it is predicting.

``bn-adapt`` (Schneider et al. 2020, arXiv:2006.16971), ``tent`` (Wang et al. 2021, arXiv:2006.10726),
``sita`` (Khurana et al. 2021, arXiv:2112.02355) and ``memo`` (Zhang et al. 2022, arXiv:2110.09506),
registered in :data:`ADAPTERS` with their typed arguments (``adapter_args(name, {...}).prepare(model)``).
"""

from shiftlab.adapt import bn_adapt, memo, sita, tent  # noqa: F401  (registration)
from shiftlab.adapt.base import (
    ADAPTERS,
    Adapter,
    AdapterArgs,
    AdapterMeta,
    Mode,
    adapter_args,
    describe_args,
    model_copy,
)

__all__ = ["ADAPTERS", "Adapter", "AdapterArgs", "AdapterMeta", "Mode", "adapter_args", "describe_args", "model_copy"]
