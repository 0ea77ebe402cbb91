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
    if name.startswith("cuda"):
        require_cuda("device", f"{name!r} asked for")
    try:
        return torch.device(name)
    except RuntimeError:
        raise InputError("device", f"unknown device {name!r} (auto, cpu or cuda)") from None


def require_cuda(where: str, why: str = "a GPU asked for") -> torch.device:
    """The CUDA device, or an InputError within seconds that says what the job sees and what to
    check: a job that asked SLURM for a GPU must not fall back to the CPU and run until its
    time limit (wrong partition, a node without GPUs, a driver older than torch's CUDA)."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    import platform

    problem = "torch sees no CUDA device"
    if torch.version.cuda is None:
        problem = f"this torch ({torch.__version__}) is a CPU-only build"
    else:
        try:
            torch.cuda.init()
        except Exception as err:     # the driver's own words: too old, no device, not loaded
            problem = f"CUDA does not start: {err}"
    raise InputError(where, (
        f"{why}, but {problem} on host {platform.node()} (CUDA_VISIBLE_DEVICES="
        f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}, torch {torch.__version__} built for CUDA "
        f"{torch.version.cuda or 'none'}). Check that the job got a GPU (the partition, sbatch --gpus), "
        f"that nvidia-smi works on that node and that its driver supports CUDA {torch.version.cuda or '12+'}; "
        f"or run on the CPU with execution.device: cpu"))


def describe_device(device: torch.device, bf16: bool) -> str:
    """What a network job runs on, for its log and the benchmark tables: the device, its name and the
    precision (bf16 autocast, fp32, or fp32 with TF32 convolutions, cuDNN's default on Ampere+)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(index)
        precision = "bf16 autocast" if bf16_is_used(device, bf16) else (
            "TF32 convolutions" if major >= 8 and torch.backends.cudnn.allow_tf32 else "fp32")
        return (f"cuda:{index} ({torch.cuda.get_device_name(index)}, compute capability {major}.{minor}, "
                f"CUDA {torch.version.cuda}), {precision}")
    precision = "bf16 autocast" if bf16_is_used(device, bf16) else "fp32"
    return f"{device.type} ({cpu_description()}, {torch.get_num_threads()} threads), {precision}"


def set_threads(threads: int | None) -> None:
    """Honour the job's thread count in torch and the BLAS pools (they default to every core)."""
    if threads:
        threads = max(1, int(threads))
        torch.set_num_threads(threads)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ[var] = str(threads)


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU runs bf16 convolutions in fast kernels.

    oneDNN has bf16 kernels from AVX-512 on (emulated on plain AVX-512, native with AVX512-BF16
    or AMX). On an AVX2-only CPU, bf16 Conv3d falls back to reference loops: one training step of
    the demo's net took 57 s in bf16 against 0.66 s in fp32 on a 2-core AMD EPYC (AVX2), where an
    AVX-512 machine had measured bf16 2x *faster* than fp32.
    """
    cap = onednn_isa_cap()
    if cap is not None and not cap.startswith(("AVX512", "AVX10", "AMX", "ALL", "DEFAULT")):
        return False  # the user capped oneDNN below AVX-512: its bf16 kernels are the slow ones
    probe = getattr(torch.cpu, "_is_avx512_supported", None)
    return bool(probe()) if probe is not None else torch.backends.cpu.get_cpu_capability().startswith("AVX512")


def onednn_isa_cap() -> str | None:
    """The instruction-set cap put on oneDNN's kernels (``ONEDNN_MAX_CPU_ISA``, older name
    ``DNNL_MAX_CPU_ISA``), upper case, or None. With ``ONEDNN_MAX_CPU_ISA=AVX2`` an AVX-512 machine
    runs the convolutions an AVX2-only CPU runs (how docs/benchmark.md measured AVX2 figures on an
    AMX machine), so bf16 must not be taken for fast there."""
    for var in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        value = os.environ.get(var, "").strip()
        if value:
            return value.upper()
    return None


def bf16_is_used(device: torch.device, bf16: bool) -> bool:
    """Whether ``bf16: true`` really autocasts on ``device``: not on a GPU without bf16 and not on a
    CPU without fast bf16 kernels (:func:`cpu_has_fast_bf16`); there it runs fp32 instead."""
    if not bf16:
        return False
    if device.type == "cuda":   # native bf16 only: V100/T4 emulate it, and bf16 Conv3d then misses cuDNN
        index = device.index if device.index is not None else torch.cuda.current_device()
        return torch.cuda.get_device_capability(index) >= (8, 0)
    if device.type == "cpu":
        return cpu_has_fast_bf16()
    return True


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CPU or CUDA when ``bf16`` and the hardware runs it fast, else a no-op context.

    Where bf16 would fail or crawl (:func:`bf16_is_used`), the net runs in fp32, with one warning.
    """
    if not bf16:
        return contextlib.nullcontext()
    if not bf16_is_used(device, bf16):
        _warn_once(device)
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _warn_once(device: torch.device) -> None:
    if device.type not in _warned:
        why = "this GPU has no native bf16 (compute capability < 8.0)" if device.type == "cuda" else \
            f"this CPU ({torch.backends.cpu.get_cpu_capability()}, no AVX-512) has no fast bf16 kernels"
        log.warning("bf16 asked for, but %s; running in fp32", why)
        _warned.add(device.type)


_warned: set[str] = set()


def memory_format(device: torch.device, bf16_used: bool, choice: str = "auto",
                  threads: int | None = None) -> torch.memory_format:
    """The layout of the DDPM's tensors (``execution.ddpm_memory_format``).

    ``auto``: channels_last_3d for fp32 on a CPU with two or more threads, contiguous otherwise.
    Measured on a 2-core AMX machine (docs/benchmark/ddpm_throughput.csv, a training step of the
    benchmark's net, 32^3 x 2): fp32 0.46 s contiguous against 0.35 s channels_last_3d with 2
    threads, but 0.57 against 0.67 s with 1 thread; bf16 0.27 against 0.43 s. A speed choice: the
    results agree to float rounding.
    """
    if choice == "channels_last":
        return torch.channels_last_3d
    if choice == "contiguous":
        return torch.contiguous_format
    if choice != "auto":
        raise InputError("execution.ddpm_memory_format", f"expected auto, channels_last or contiguous, got {choice!r}")
    threads = torch.get_num_threads() if threads is None else threads
    fast = device.type == "cpu" and not bf16_used and threads >= 2
    return torch.channels_last_3d if fast else torch.contiguous_format


#: the CPU flags that decide which kernels are fast (bf16 and its matrix units, AVX-512, AVX2)
KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")


def cpu_description() -> str:
    """``<model name> [flags]`` of this machine's CPU, from /proc/cpuinfo (Linux), e.g.
    ``Intel(R) Xeon(R) Processor [avx2 avx512f avx512_bf16 amx_bf16 amx_tile avx512_vnni]``: what
    every benchmark figure must carry, since kernel speeds differ by up to 90x between machines
    (`` oneDNN capped at AVX2`` appended where :func:`onednn_isa_cap` is set)."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in open("/proc/cpuinfo"):
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    text = f"{model} [{' '.join(f for f in KERNEL_FLAGS if f in flags)}]"
    cap = onednn_isa_cap()
    return text if cap is None else f"{text} oneDNN capped at {cap}"
