"""Write a phantom volume as a CT DICOM series in the layout of an LIDC-IDRI download.

The folder is ``<root>/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>/`` (the first
layout ``pylidc.Scan.get_path_to_dicom_files`` tries), the UIDs and patient id are the
scan's real ones, so pylidc finds the series exactly as it would find the real one. Every
field a viewer shows says that the images are synthetic. Nothing depends on the clock: the
same scan and seed give the same bytes.
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


def series_folder(dicom_root, scan) -> Path:
    """``<root>/<PatientID>/<StudyInstanceUID>/<SeriesInstanceUID>`` of ``scan``."""
    return Path(dicom_root) / scan.patient_id / scan.study_instance_uid / scan.series_instance_uid


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
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
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


def write_series(volume: PhantomVolume, scan, dicom_root, seed: int) -> Path:
    """Write ``volume`` (the phantom of ``scan``) as one DICOM file per slice; return the folder.

    Files are ``000001.dcm``... in ascending z. The series is written into a hidden
    temporary sibling folder and renamed into place at the end, replacing an older copy,
    so a killed job never leaves a partial series under the real name.
    """
    final = series_folder(dicom_root, scan)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{final.name}")
    tmp.mkdir()
    old = None
    try:
        for index in range(volume.hu.shape[0]):
            dcmwrite(tmp / f"{index + 1:06d}.dcm", slice_dataset(volume, scan, seed, index),
                     enforce_file_format=True)
        if final.exists():
            old = final.with_name(f".old-{uuid.uuid4().hex[:8]}-{final.name}")
            os.replace(final, old)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
        if old is not None and old.exists():
            shutil.rmtree(old)
    return final


def write_phantom_series(scan, dicom_root, seed: int) -> Path:
    """Generate the phantom of a pylidc ``Scan`` and write it under ``dicom_root`` (see
    :func:`write_series`); returns the series folder."""
    return write_series(phantom_volume(scan, seed), scan, dicom_root, seed)
