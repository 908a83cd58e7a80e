"""Device names at the API edge: "auto" picks CUDA, then Apple's MPS, then the CPU.

Every device option is validated here, before any model or data is loaded; ``rank_device`` gives each
process of a distributed (torchrun) training run its own.
"""

from __future__ import annotations

import re

import torch

from shiftlab.core.errors import UserError

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def resolve_device(name: str | torch.device) -> torch.device:
    """A usable ``torch.device`` for ``name``; an unknown or unavailable device is a UserError."""
    if isinstance(name, torch.device):
        name = str(name)
    text = str(name).strip().lower()
    if not DEVICE_PATTERN.match(text):
        raise UserError(f"--device must be auto, cpu, cuda, cuda:N or mps, got {name!r}")
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if text.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {text}: no CUDA device is available here; use --device cpu or auto")
        index = int(text.split(":")[1]) if ":" in text else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"--device {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if text == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
    return torch.device(text)


def rank_device(name: str | torch.device, local_rank: int, local_world_size: int) -> torch.device:
    """The device of one of ``local_world_size`` training processes on this machine (torchrun).

    ``auto`` or ``cuda`` give process ``local_rank`` its own GPU, ``cuda:local_rank`` (CUDA needs a GPU
    per process); ``cpu`` is shared. A fixed ``cuda:N`` (every process on one GPU) and MPS (no
    collective backend) are UserErrors.
    """
    text = str(name).strip().lower()
    device = resolve_device(text)
    if device.type == "mps":
        raise UserError("distributed training runs on CPU (gloo) or CUDA (NCCL), not on MPS; use --device cpu")
    if device.type != "cuda":
        return device
    if ":" in text:
        raise UserError(f"--device {text}: with several processes each one takes cuda:LOCAL_RANK; "
                        "pass --device cuda (or auto)")
    if local_world_size > torch.cuda.device_count():
        raise UserError(f"{local_world_size} training processes on this machine but {torch.cuda.device_count()} "
                        f"CUDA device(s); start at most {torch.cuda.device_count()} (--nproc-per-node) or use --device cpu")
    return torch.device("cuda", local_rank)


AMP_CHOICES = ("bf16", "fp16")
AMP_DTYPES: dict[str, torch.dtype] = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str | None, device: str | torch.device) -> None:
    """Refuse a mixed-precision setting ``device`` cannot run: fp16 needs CUDA (its loss scaler in training,
    its kernels in evaluation); bf16 runs on the CPU (slowly without bf16 instructions) and on CUDA."""
    if amp is None:
        return
    if amp not in AMP_CHOICES:
        raise UserError(f"--amp must be {' or '.join(AMP_CHOICES)}, got {amp!r}")
    kind = str(device).split(":")[0]
    if amp == "fp16" and kind != "cuda":
        raise UserError(f"--amp fp16 needs a CUDA device, not {device}; use --amp bf16")
    if amp == "bf16" and kind not in ("cpu", "cuda"):
        raise UserError(f"--amp bf16 runs on cpu or cuda, not {device}; drop --amp")
