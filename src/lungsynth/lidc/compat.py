"""Make pylidc 0.2.3 (the release on PyPI, 2019) work with today's numpy and without ~/.pylidcrc.

pylidc uses ``np.int``, ``np.float`` and ``np.bool`` (removed in numpy 1.24) in
``Contour.to_matrix``, ``Annotation.bbox``/``boolean_mask`` and the clustering, and it reads
the DICOM root from ``~/.pylidcrc`` (writing a blank one there when it is missing). This
module restores the aliases before pylidc is imported and replaces the config-file lookup by
an explicit path, so the user's home is never read or written. It also caches
``Scan.slice_zvals``, which pylidc recomputes for every contour.
"""

from __future__ import annotations

import functools
import os
import sys
import warnings
from pathlib import Path

import numpy as np

_REMOVED_NUMPY_ALIASES = {"int": int, "float": float, "bool": bool}
_dicom_root: Path | None = None


def _restore_numpy_aliases() -> None:
    for name, builtin in _REMOVED_NUMPY_ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, builtin)


def import_pylidc(dicom_root: str | os.PathLike | None = None):
    """Import pylidc in working order; ``dicom_root`` is the folder holding ``LIDC-IDRI-xxxx/``.

    Safe to call repeatedly; the last ``dicom_root`` given wins.
    """
    global _dicom_root
    _restore_numpy_aliases()
    with warnings.catch_warnings():
        # pylidc imports pkg_resources, deprecated in setuptools >= 67
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        import pylidc
    # ``pylidc.Scan`` is the class (the package re-exports it); the module is in sys.modules
    scan_module = sys.modules["pylidc.Scan"]

    if dicom_root is not None:
        _dicom_root = Path(dicom_root)
    scan_module._get_dicom_file_path_from_config_file = _configured_dicom_root
    _cache_slice_zvals(pylidc.Scan)
    return pylidc


def _cache_slice_zvals(scan_class) -> None:
    """Compute ``Scan.slice_zvals`` once per scan: every contour's ``to_matrix`` asks for it and
    pylidc re-sorts the scan's z-values each time (most of the time of clustering the database)."""
    if isinstance(scan_class.__dict__.get("slice_zvals"), functools.cached_property):
        return
    cached = functools.cached_property(scan_class.slice_zvals.fget)
    cached.__set_name__(scan_class, "slice_zvals")
    scan_class.slice_zvals = cached


def _configured_dicom_root() -> str:
    if _dicom_root is None:
        raise RuntimeError("no DICOM root set: call lungsynth.lidc.compat.import_pylidc(dicom_root=...)")
    return str(_dicom_root)
