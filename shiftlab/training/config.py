"""A training run, fully described: the configuration stored in every checkpoint card."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from shiftlab.core.devices import check_amp
from shiftlab.core.errors import UserError
from shiftlab.training.selection import SELECT_METRICS

DEFAULT_LR = {"sgd": 0.1, "adamw": 2e-3}


@dataclass(frozen=True)
class TrainConfig:
    """A training run, fully described (stored in the checkpoint card).

    Args:
        out: run directory (checkpoint, state for resume); required, the library never picks a path.
        model: architecture name in the model registry.
        dataset: dataset name in the dataset registry.
        recipe: recipe name; ``recipe_args`` its hyper-parameters as strings.
        epochs, batch_size: length of training and batch size.
        optimizer: "sgd" (momentum, Nesterov) or "adamw"; ``lr`` None picks 0.1 / 2e-3.
        schedule: "onecycle" (linear warm-up over 15 %, cosine down), "cosine" or "constant".
        label_smoothing: cross-entropy label smoothing (Szegedy et al. 2016).
        train_limit: use only the first N training images (quick runs and tests).
        ema: EMA decay of the weights (e.g. 0.999); the averaged weights are validated and saved.
        select: keep the epoch with the best "clean", "corruption" or "adversarial" validation
            accuracy (on the first ``select_limit`` validation images; PGD radius ``select_eps``).
        amp: mixed precision, None (float32), "bf16" (CPU or CUDA) or "fp16" (CUDA, loss scaling);
            see ``training/precision.py``.
        channels_last: weights and input batches in channels-last layout.
    """

    out: str
    model: str = "small-cnn"
    dataset: str = "fashion-mnist"
    recipe: str = "erm"
    recipe_args: tuple[tuple[str, str], ...] = ()
    epochs: int = 3
    batch_size: int = 128
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float | None = None
    weight_decay: float = 5e-4
    momentum: float = 0.9
    schedule: Literal["onecycle", "cosine", "constant"] = "onecycle"
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "cpu"
    data_root: str | None = None
    val_fraction: float = 0.1
    train_limit: int | None = None
    name: str | None = None
    model_options: tuple[tuple[str, str], ...] = ()
    ema: float | None = None
    download: bool = False
    select: str | None = None
    select_limit: int = 1000
    select_eps: float = 0.1
    amp: str | None = None
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise UserError(f"--ema must be a decay in (0, 1) such as 0.999, got {self.ema}")
        if self.select is not None and self.select not in SELECT_METRICS:
            raise UserError(f"--select must be one of {', '.join(SELECT_METRICS)}, got {self.select!r}")
        if self.select_limit < 1:
            raise UserError(f"--select-limit must be at least 1, got {self.select_limit}")
        if not self.select_eps > 0:
            raise UserError(f"--select-eps must be positive, got {self.select_eps}")
        if self.epochs < 1:
            raise UserError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UserError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.optimizer not in DEFAULT_LR:
            raise UserError(f"--optimizer must be sgd or adamw, got {self.optimizer!r}")
        if self.schedule not in ("onecycle", "cosine", "constant"):
            raise UserError(f"--schedule must be onecycle, cosine or constant, got {self.schedule!r}")
        if self.lr is not None and not self.lr > 0:
            raise UserError(f"--lr must be positive, got {self.lr}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise UserError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"--val-fraction must be in (0, 1), got {self.val_fraction}")
        check_amp(self.amp, self.device)
        if self.train_limit is not None and self.train_limit < self.batch_size:
            raise UserError(f"--train-limit must be at least one batch ({self.batch_size}), got {self.train_limit}")

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["recipe_args"] = dict(self.recipe_args)
        d["model_options"] = dict(self.model_options)
        return d

    def identity(self) -> dict[str, Any]:
        """The fields that must match for ``--resume``: everything but where, on what device and in which
        memory layout (``amp`` only when set, so runs stored before it existed still resume)."""
        d = self.to_dict()
        for k in ("out", "device", "data_root", "name", "download", "channels_last"):
            d.pop(k)
        if d["amp"] is None:
            d.pop("amp")
        return d
