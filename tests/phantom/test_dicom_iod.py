"""The phantom's slices are valid CT Image Storage objects: every Type 1 and Type 2 attribute of the
modules of the CT Image IOD (DICOM PS3.3 A.3) is present, Type 1 ones with valid values."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.valuerep import validate_value

# module -> {keyword: type}, for the mandatory modules of the CT Image IOD (PS3.3 A.3.3) and the
# conditional ones a single-frame CT slice needs; "2C" attributes whose condition holds for an axial
# CT series are listed as 2 (PatientPosition: required for CT; ContentDate/Time: temporally related).
CT_IMAGE_IOD = {
    "Patient (C.7.1.1)": {"PatientName": "2", "PatientID": "2", "PatientBirthDate": "2", "PatientSex": "2"},
    "General Study (C.7.2.1)": {"StudyInstanceUID": "1", "StudyDate": "2", "StudyTime": "2",
                                "ReferringPhysicianName": "2", "StudyID": "2", "AccessionNumber": "2"},
    "General Series (C.7.3.1)": {"Modality": "1", "SeriesInstanceUID": "1", "SeriesNumber": "2",
                                 "PatientPosition": "2"},
    "Frame of Reference (C.7.4.1)": {"FrameOfReferenceUID": "1", "PositionReferenceIndicator": "2"},
    "General Equipment (C.7.5.1)": {"Manufacturer": "2"},
    "General Image (C.7.6.1)": {"InstanceNumber": "2", "ContentDate": "2", "ContentTime": "2"},
    "Image Plane (C.7.6.2)": {"PixelSpacing": "1", "ImageOrientationPatient": "1", "ImagePositionPatient": "1",
                              "SliceThickness": "2"},
    "Image Pixel (C.7.6.3)": {"SamplesPerPixel": "1", "PhotometricInterpretation": "1", "Rows": "1",
                              "Columns": "1", "BitsAllocated": "1", "BitsStored": "1", "HighBit": "1",
                              "PixelRepresentation": "1", "PixelData": "1"},
    "CT Image (C.8.2.1)": {"ImageType": "1", "SamplesPerPixel": "1", "PhotometricInterpretation": "1",
                           "BitsAllocated": "1", "BitsStored": "1", "HighBit": "1", "RescaleIntercept": "1",
                           "RescaleSlope": "1", "KVP": "2", "AcquisitionNumber": "2"},
    "SOP Common (C.12.1)": {"SOPClassUID": "1", "SOPInstanceUID": "1", "SpecificCharacterSet": "1"},
}
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


@pytest.fixture(scope="module")
def slices(written):
    return [pydicom.dcmread(p) for p in sorted(written.glob("*.dcm"))[:3]]


@pytest.mark.parametrize("module", sorted(CT_IMAGE_IOD))
def test_every_type_1_and_2_attribute_of_the_module_is_present(slices, module):
    for keyword, kind in CT_IMAGE_IOD[module].items():
        assert tag_for_keyword(keyword) is not None, f"{keyword} is not a DICOM keyword"
        for ds in slices:
            assert keyword in ds, f"{module}: Type {kind} attribute {keyword} missing"
            element = ds[keyword]
            assert element.VR == dictionary_VR(keyword) or keyword == "PixelData"
            if kind == "1":
                assert element.value not in (None, "", b"", []), f"{module}: Type 1 {keyword} is empty"
                if keyword != "PixelData":
                    values = element.value if isinstance(element.value, (list, pydicom.multival.MultiValue)) \
                        else [element.value]
                    for value in values:
                        text = str(value) if element.VR in ("DS", "IS") else value   # as written in the file
                        validate_value(element.VR, text, pydicom.config.RAISE)


def test_it_is_a_ct_image_storage_object_whose_pixels_match_its_description(slices):
    for ds in slices:
        assert ds.SOPClassUID == CT_IMAGE_STORAGE == ds.file_meta.MediaStorageSOPClassUID
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        assert ds.Modality == "CT" and ds.ImageType[2] == "AXIAL"
        assert ds.SamplesPerPixel == 1 and ds.PhotometricInterpretation == "MONOCHROME2"   # CT Image's fixed values
        assert ds.BitsAllocated == 16 and ds.HighBit == ds.BitsStored - 1
        assert ds.pixel_array.shape == (ds.Rows, ds.Columns)
        assert ds.pixel_array.max() < 2 ** ds.BitsStored
