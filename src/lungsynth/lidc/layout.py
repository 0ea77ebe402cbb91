"""Where an LIDC-IDRI download keeps a scan's series, in each layout TCIA has shipped.

``data.lidc_root`` may be the manifest folder of an NBIA Data Retriever download
(``manifest-<n>/``, with ``LIDC-IDRI/`` and ``metadata.csv`` inside), its ``LIDC-IDRI/`` folder,
or any folder that holds the patient folders ``LIDC-IDRI-0001/`` ... directly. Below a patient
folder three layouts are known:

- UID-named (old TCIA, and pylidc's first guess): ``<StudyInstanceUID>/<SeriesInstanceUID>/000001.dcm``;
- NBIA today: ``01-01-2000-NA-NA-30178/3000566.000000-NA-03192/1-001.dcm`` (study: date,
  description, last 5 digits of the study UID; series: number, description, last 5 digits of
  the series UID; ``NA`` for an empty description), with the readers' XML beside the slices;
- NBIA before: ``01-01-2000-30178/3000566-03192/000001.dcm``.

Some patients also have CR/DX series. A series is identified by its UIDs in the files' headers
(as pylidc does after its first guess), never by folder names alone; folders whose names end in
the UIDs' last digits are looked at first.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Iterable

import pydicom
from pydicom.errors import InvalidDicomError

from ..errors import InputError

log = logging.getLogger(__name__)

PATIENT_FOLDER = re.compile(r"^LIDC-IDRI-\d{4}$")
COLLECTION = "LIDC-IDRI"


def _patient_folders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and PATIENT_FOLDER.match(p.name)]
    except OSError:
        return []


def patient_root(lidc_root) -> Path:
    """The folder that holds the ``LIDC-IDRI-xxxx`` patient folders of a download."""
    root = Path(lidc_root)
    if not root.is_dir():
        raise InputError(root, "LIDC-IDRI folder not found (data.lidc_root in the config)")
    for candidate in (root, root / COLLECTION, *sorted(root.glob(f"manifest-*/{COLLECTION}"))):
        if _patient_folders(candidate):
            return candidate
    raise InputError(root, f"holds no {COLLECTION}-xxxx patient folder: set data.lidc_root to the NBIA manifest "
                           f"folder (manifest-<n>/), its {COLLECTION}/ folder, or a folder holding the patient "
                           f"folders")


def present_patients(lidc_root, wanted: Iterable[str]) -> tuple[Path, list[str], list[str]]:
    """``(patient root, present, missing)`` of the ``wanted`` patient ids under a download."""
    root = patient_root(lidc_root)
    found = {p.name for p in _patient_folders(root)}
    wanted = list(wanted)
    return root, [p for p in wanted if p in found], [p for p in wanted if p not in found]


def _dicom_folders(patient_dir: Path, study_uid: str, series_uid: str) -> list[Path]:
    """Folders below ``patient_dir`` holding ``.dcm`` files, those named after the UIDs' last
    digits first (NBIA layouts), the UID-named folder first of all (pylidc's first guess)."""
    folders = sorted({p.parent for p in patient_dir.rglob("*.dcm")})

    def rank(folder: Path) -> tuple[int, str]:
        if folder == patient_dir / study_uid / series_uid:
            return 0, str(folder)
        named = folder.name.endswith(series_uid[-5:]) and folder.parent.name.endswith(study_uid[-5:])
        return (1 if named else 2), str(folder)

    return sorted(folders, key=rank)


def series_uids(path: Path) -> tuple[str, str] | None:
    """``(StudyInstanceUID, SeriesInstanceUID)`` of a DICOM file's header; None if unreadable."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID", "SeriesInstanceUID"])
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return None
    return str(ds.get("StudyInstanceUID", "")).strip(), str(ds.get("SeriesInstanceUID", "")).strip()


def find_series(patient_dir, study_uid: str, series_uid: str) -> Path:
    """The folder of the series ``series_uid`` (of study ``study_uid``) below a patient folder."""
    patient_dir = Path(patient_dir)
    if not patient_dir.is_dir():
        raise InputError(patient_dir, "patient folder not found under the DICOM root")
    looked = 0
    for folder in _dicom_folders(patient_dir, study_uid, series_uid):
        first = min(folder.glob("*.dcm"))
        looked += 1
        if series_uids(first) == (study_uid, series_uid):
            return folder
    raise InputError(patient_dir, f"no series with SeriesInstanceUID {series_uid} below this folder "
                                  f"({looked} DICOM folder(s) looked at)")
