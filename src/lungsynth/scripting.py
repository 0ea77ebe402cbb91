"""Glue for the thin scripts under ``workflow/scripts``: logging to the rule's log and clean failures.

The library never imports snakemake; this module only reads the ``snakemake`` object the
scripts are handed (``log``, ``threads``), duck-typed.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Callable

from .errors import InputError

log = logging.getLogger("lungsynth")


def configure_logging(log_path: str | None = None, level: int = logging.INFO) -> None:
    """Send the library's log records (and warnings) to ``log_path`` and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    logging.captureWarnings(True)


def run(snakemake, main: Callable[[], None]) -> None:
    """Run ``main`` for a Snakemake script: log to the rule's log, turn InputError into one line.

    Outputs are not cleaned here: Snakemake deletes a failed job's outputs, and every writer in
    the library is atomic, so nothing partial survives under a final name.
    """
    log_path = snakemake.log[0] if len(snakemake.log) else None
    configure_logging(log_path)
    limit_threads(getattr(snakemake, "threads", 1))
    try:
        gpus = _gpus_asked(snakemake)
        if gpus:
            from .runtime import require_cuda

            require_cuda(f"rule {getattr(snakemake, 'rule', '?')}", f"resources gpu={gpus} asked for")
        main()
    except InputError as err:
        log.error("%s", err)
        sys.exit(1)


def limit_threads(threads: int | None) -> None:
    """The job's thread count, for the BLAS pools and torch.

    Set in the environment, where a torch loaded later starts with it, so that a job that needs no
    network does not load torch (seconds a job); a torch already loaded is told directly.
    """
    threads = max(1, int(threads or 1))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        from .runtime import set_threads

        set_threads(threads)


def _gpus_asked(snakemake) -> int:
    resources = getattr(snakemake, "resources", None)
    return int(getattr(resources, "gpu", 0) or 0) if resources is not None else 0


def job_device(snakemake) -> str:
    """The device of a network job: ``cuda`` where its resources hold a GPU, else ``execution.device``."""
    return "cuda" if _gpus_asked(snakemake) else snakemake.config["execution"]["device"]
