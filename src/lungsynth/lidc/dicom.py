"""Read one LIDC-style CT series into a HU volume with its geometry, refusing broken series.

The series is found by its UIDs in any TCIA layout (:mod:`lungsynth.lidc.layout`), so the
built-in phantom and a real LIDC-IDRI download go through the same code. The slice positions are
checked against the annotation database, which lists every slice of every scan, because the
nodule contours are indexed by that list: a missing or extra slice is an error. Where pylidc's
loader has a rule, the reader follows it: slices are ordered by ImagePositionPatient, and of two
slices at the same position with the same geometry the lower InstanceNumber is kept (logged).
Slices that disagree on orientation, pixel spacing or size, and uneven spacing, are errors.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from ..io import Geometry
from .layout import find_series, patient_root

log = logging.getLogger(__name__)

Z_TOLERANCE_MM = 0.01


def series_folder(scan, dicom_root: Path) -> Path:
    """The folder of ``scan``'s series under ``dicom_root`` (any TCIA layout); InputError if absent."""
    root = patient_root(dicom_root)
    patient_dir = root / scan.patient_id
    if not patient_dir.is_dir():
        raise InputError(patient_dir, f"no folder for {scan.patient_id} under the DICOM root")
    return find_series(patient_dir, scan.study_instance_uid, scan.series_instance_uid)


def _read_slice(path: Path):
    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise InputError(path, f"not a readable DICOM file ({err})") from None
    for attribute in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SeriesInstanceUID"):
        if attribute not in dataset:
            raise InputError(path, f"DICOM slice lacks {attribute}")
    return dataset


#: what decodes a compressed transfer syntax, for the message when it is missing
DECODERS = "Pillow (with OpenJPEG) or pylibjpeg-openjpeg for JPEG 2000, pylibjpeg-libjpeg for JPEG, " \
           "pylibjpeg-rle for RLE"


def _pixels(dataset, path: Path) -> np.ndarray:
    try:
        pixels = dataset.pixel_array
    except Exception as err:  # pydicom raises several types for truncated or odd pixel data
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        if syntax is not None and syntax.is_compressed and "plugin" in str(err).lower():
            raise InputError(path, f"pixel data is compressed ({syntax.name}) and no installed package decodes "
                                   f"it: install one of {DECODERS} (pip install pylibjpeg pylibjpeg-openjpeg)") from None
        raise InputError(path, f"pixel data truncated or unreadable ({err})") from None
    slope = float(getattr(dataset, "RescaleSlope", 1.0))
    intercept = float(getattr(dataset, "RescaleIntercept", 0.0))
    return pixels.astype(np.float32) * slope + intercept


def read_series(scan, dicom_root) -> tuple[np.ndarray, Geometry]:
    """The scan's CT as HU ``(z, y, x)`` int16, slices in ascending z, and its geometry.

    Raises InputError naming the file or folder for: unreadable/truncated files, duplicated
    slice positions with another geometry, slices missing or extra against the annotation
    database, uneven spacing, and slices that disagree on orientation, pixel spacing or size.
    """
    folder = series_folder(scan, dicom_root)
    files = sorted(p for p in folder.iterdir() if p.suffix == ".dcm" and not p.name.startswith("."))
    if not files:
        raise InputError(folder, "series folder holds no .dcm files")
    ordered = _ordered_slices(files, scan.series_instance_uid)
    _check_against_database(scan, folder, np.array([float(d.ImagePositionPatient[2]) for _, d in ordered]))
    return _volume(ordered, folder)


def read_dicom_folder(folder) -> tuple[np.ndarray, Geometry]:
    """A user's CT series: every DICOM file in ``folder`` (any file names; compressed transfer
    syntaxes through pydicom's decoders), as HU ``(z, y, x)`` int16 in ascending z, and its geometry.

    The folder must hold one series (files of several SeriesInstanceUIDs are an error naming
    them); the same checks as :func:`read_series` apply, without the LIDC annotation database.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "DICOM folder not found")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and _is_dicom(p))
    if not files:
        raise InputError(folder, "holds no DICOM files")
    series = {str(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
                  .get("SeriesInstanceUID", "")).strip() for p in files}
    if len(series) > 1:
        raise InputError(folder, f"holds {len(series)} series ({', '.join(sorted(series)[:3])}); give one series per folder")
    return _volume(_ordered_slices(files, series.pop()), folder)


def _is_dicom(path: Path) -> bool:
    """A DICOM Part 10 file: 128 bytes of preamble, then ``DICM``."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _ordered_slices(files, series_uid: str) -> list[tuple[Path, object]]:
    """The slices of ``series_uid`` among ``files``, one per position, in ascending z."""
    at_z: dict[float, list[tuple[Path, object]]] = {}
    for path in files:
        dataset = _read_slice(path)
        if str(dataset.SeriesInstanceUID).strip() != series_uid:
            continue  # pylidc also skips files of other series in the same folder
        at_z.setdefault(round(float(dataset.ImagePositionPatient[2]), 3), []).append((path, dataset))
    return [_one_slice(z, at_z[z]) for z in sorted(at_z)]


def _volume(ordered: list[tuple[Path, object]], folder: Path) -> tuple[np.ndarray, Geometry]:
    """The HU volume of ordered slices, checking that they agree on orientation, spacing and size."""
    if not ordered:
        raise InputError(folder, "no slice of the series")
    first_path, first = ordered[0]
    orientation = np.array(first.ImageOrientationPatient, float)
    pixel_spacing = np.array(first.PixelSpacing, float)
    shape = (int(first.Rows), int(first.Columns))
    volume = np.empty((len(ordered),) + shape, dtype=np.int16)
    for k, (path, dataset) in enumerate(ordered):
        if not np.allclose(np.array(dataset.ImageOrientationPatient, float), orientation, atol=1e-4):
            raise InputError(path, f"ImageOrientationPatient differs from {first_path.name}")
        if not np.allclose(np.array(dataset.PixelSpacing, float), pixel_spacing, atol=1e-4):
            raise InputError(path, f"PixelSpacing differs from {first_path.name}")
        hu = _pixels(dataset, path)
        if hu.shape != shape:
            raise InputError(path, f"slice is {hu.shape[0]}x{hu.shape[1]}, {first_path.name} is {shape[0]}x{shape[1]}")
        volume[k] = np.clip(np.rint(hu), -32768, 32767)
    return volume, _geometry(ordered, orientation, pixel_spacing, folder)


def _geometry_key(dataset) -> tuple:
    return (tuple(np.round(np.array(dataset.ImageOrientationPatient, float), 4)),
            tuple(np.round(np.array(dataset.PixelSpacing, float), 4)), int(dataset.Rows), int(dataset.Columns))


def _one_slice(z: float, group: list[tuple[Path, object]]) -> tuple[Path, object]:
    """The slice kept at position ``z``: of duplicates with the same geometry, the lower
    InstanceNumber (pylidc's rule), logged; duplicates that disagree on geometry are an error."""
    if len(group) == 1:
        return group[0]
    group = sorted(group, key=lambda item: (int(getattr(item[1], "InstanceNumber", 0) or 0), item[0].name))
    kept_path, kept = group[0]
    for path, dataset in group[1:]:
        if _geometry_key(dataset) != _geometry_key(kept):
            raise InputError(path, f"duplicated slice: z = {z} mm is also in {kept_path.name}, with another "
                                   f"orientation, pixel spacing or size; the series cannot be trusted")
        log.warning("%s: duplicated slice at z = %g mm (also %s); keeping InstanceNumber %s (%s), as pylidc does",
                    path.parent, z, path.name, getattr(kept, "InstanceNumber", "?"), kept_path.name)
    return group[0]


def _check_against_database(scan, folder: Path, z_series: np.ndarray) -> None:
    z_database = np.asarray(scan.slice_zvals, float)

    def absent(values, reference):
        return [float(v) for v in values if np.min(np.abs(reference - v)) > Z_TOLERANCE_MM]

    missing = absent(z_database, z_series) if len(z_series) else list(z_database)
    if missing:
        shown = ", ".join(f"{z:g}" for z in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(folder, f"series lacks {len(missing)} slice(s) listed in the LIDC annotation database "
                                 f"(z = {shown} mm): {len(z_series)} of {len(z_database)} slices present")
    extra = absent(z_series, z_database)
    if extra:
        raise InputError(folder, f"series has {len(extra)} slice(s) the annotation database does not list "
                                 f"(z = {', '.join(f'{z:g}' for z in extra[:5])} mm)")


def _geometry(ordered, orientation, pixel_spacing, folder: Path) -> Geometry:
    positions = np.array([np.array(d.ImagePositionPatient, float) for _, d in ordered])
    if len(positions) < 2:
        raise InputError(folder, "series has a single slice; a CT volume needs at least two")
    steps = np.linalg.norm(np.diff(positions, axis=0), axis=1)
    spacing_z = float(np.median(steps))
    if np.max(np.abs(steps - spacing_z)) > 0.01 * spacing_z + Z_TOLERANCE_MM:
        raise InputError(folder, f"slices are unevenly spaced ({steps.min():.3f} to {steps.max():.3f} mm)")
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    slice_direction = (positions[-1] - positions[0]) / np.linalg.norm(positions[-1] - positions[0])
    direction = np.column_stack([row_cosine, column_cosine, slice_direction])
    # DICOM PixelSpacing is (row spacing = y, column spacing = x)
    return Geometry(
        spacing=(float(pixel_spacing[1]), float(pixel_spacing[0]), spacing_z),
        origin=tuple(float(v) for v in positions[0]),
        direction=tuple(float(v) for v in direction.ravel()),
    )
