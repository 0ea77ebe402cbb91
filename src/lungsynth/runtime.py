"""Where and how the net runs: device chosen at run time, threads, bf16 autocast."""

from __future__ import annotations

import contextlib
import logging
import os

import torch

from .errors import InputError

log = logging.getLogger("lungsynth")


def resolve_device(name: str | torch.device | None = "auto") -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a GPU is an InputError."""
    if isinstance(name, torch.device):
        return name
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device", f"{name!r} asked for, but torch sees no CUDA device")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError("device", f"unknown device {name!r} (auto, cpu or cuda)") from None


def set_threads(threads: int | None) -> None:
    """Honour the job's thread count in torch and the BLAS pools (they default to every core)."""
    if threads:
        threads = max(1, int(threads))
        torch.set_num_threads(threads)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CPU or CUDA when ``bf16``, else a no-op context.

    A GPU without bf16 support runs in fp32 (with one warning) rather than failing.
    """
    if not bf16:
        return contextlib.nullcontext()
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        global _warned
        if not _warned:
            log.warning("this GPU has no bf16 support; running in fp32")
            _warned = True
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


_warned = False
