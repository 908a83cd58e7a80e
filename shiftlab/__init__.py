"""shiftlab: how does my image classifier behave under distribution shift, and which recipe makes it better?

Public API (imported lazily so ``import shiftlab`` stays cheap)::

    import shiftlab
    result = shiftlab.train(shiftlab.TrainConfig(out="runs/erm", epochs=3))
    report = shiftlab.evaluate("runs/erm", suites=["clean", "corruptions"], store="results.db", limit=1000)

``evaluate`` and ``train`` are functions of this module; the packages that implement them are
``shiftlab.evaluation`` and ``shiftlab.training`` (so importing those never shadows the functions).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shiftlab.core.version import __version__

if TYPE_CHECKING:
    from shiftlab.core.progress import EvalProgress, TrainProgress
    from shiftlab.evaluation import RunReport
    from shiftlab.training import TrainConfig, TrainResult

_API = {
    "load_model": "shiftlab.models",
    "save_checkpoint": "shiftlab.models",
    "load_dataset": "shiftlab.data",
    "TrainConfig": "shiftlab.training",
    "RunOptions": "shiftlab.evaluation",
    "Store": "shiftlab.store",
    "UserError": "shiftlab.core.errors",
}


def evaluate(model: str | Path, suites: Sequence[str] = ("clean",), *, store: str | Path = ":memory:",
             dataset: str | None = None, data_root: str | Path | None = None, seed: int = 0,
             limit: int | None = None, batch_size: int = 256, device: str = "auto",
             progress: EvalProgress | None = None, download: bool = False, pretrained: str | None = None,
             amp: str | None = None, channels_last: bool = False, **options: Any) -> RunReport:
    """Evaluate a checkpoint (a run directory, a weights file with its card, or ``zoo:NAME``) on suites.

    ``store`` is a results database path (finished tasks are reused and an interrupted run resumes);
    the default keeps the results in memory only. ``options`` are the suites' options by name
    (``corruptions``, ``severities``, ``params``, ``baseline``, ``norm``, ``eps``, ``attack``,
    ``ood_set``, ...; see ``shiftlab list suites``); values are Python values or the CLI's text.
    ``amp`` ("bf16", or "fp16" on CUDA) runs the forward passes under autocast and stores the rows as a
    model of their own ("NAME [bf16]"); ``channels_last`` uses NHWC layout (same rows).
    Returns the run report (tasks run, reused, and every stored row of the suites).
    """
    from shiftlab.app.evaluate import evaluate_model

    return evaluate_model(model, list(suites), store=store, dataset=dataset, data_root=data_root, seed=seed,
                          limit=limit, batch_size=batch_size, device=device, progress=progress, options=options,
                          download=download, pretrained=pretrained, amp=amp, channels_last=channels_last)


def train(config: TrainConfig, progress: TrainProgress | None = None, resume: bool | str = False) -> TrainResult:
    """Train ``config.model`` with ``config.recipe``; a checkpoint every epoch in ``config.out``.

    ``resume``: True continues the run in ``config.out``, "auto" continues it when there is one.
    """
    from shiftlab.training import train as run_training

    return run_training(config, progress, resume=resume)  # type: ignore[arg-type]


def __getattr__(name: str) -> Any:
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'shiftlab' has no attribute {name!r}")


__all__ = ["TrainConfig", "__version__", "evaluate", "load_dataset", "load_model", "train"]
