"""Bring your own data: a folder of CT images and a folder of lesion masks, paired by name.

An image is a NIfTI file ``<case>.nii.gz`` (HU) or a folder ``<case>/`` holding one DICOM series
(any file names, compressed transfer syntaxes included: :func:`lungsynth.lidc.dicom.read_dicom_folder`);
its mask is ``<case>.nii.gz`` in the masks folder, on the image's grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..case_ids import case_id_of
from ..errors import InputError
from ..io import read_nifti

SUFFIX = ".nii.gz"


def pair_cases(images_dir, masks_dir) -> list[tuple[str, Path, Path]]:
    """``(case, image, mask)`` for every image with a mask of the same name; InputError otherwise."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder, key in ((images_dir, "data.nifti_images"), (masks_dir, "data.nifti_masks")):
        if not folder.is_dir():
            raise InputError(folder, f"folder not found ({key} in the config)")
    images = sorted([*images_dir.glob(f"*{SUFFIX}"), *(p for p in images_dir.iterdir()
                                                       if p.is_dir() and not p.name.startswith("."))])
    if not images:
        raise InputError(images_dir, f"no *{SUFFIX} images and no DICOM series folders")
    pairs = []
    for image in images:
        mask = masks_dir / f"{case_id_of(image)}{SUFFIX}"
        if not mask.exists():
            raise InputError(mask, f"missing: every image needs a mask of the same name (image {image})")
        pairs.append((case_id_of(image), image, mask))
    return pairs


def load_pair(image_path, mask_path):
    """``(hu, lesion_labels, geometry)`` of one pair, checking the mask fits the image and is not empty.

    Lesions are the connected components of the voxels > 0 (the user's label values are ignored).
    """
    if Path(image_path).is_dir():
        from ..lidc.dicom import read_dicom_folder

        hu, geometry = read_dicom_folder(image_path)
    else:
        hu, geometry = read_nifti(image_path)
    mask, mask_geometry = read_nifti(mask_path)
    if mask.shape != hu.shape:
        raise InputError(mask_path, f"mask shape {mask.shape[::-1]} (x, y, z) does not match image {image_path} "
                                    f"shape {hu.shape[::-1]}")
    if not mask_geometry.matches(geometry):
        raise InputError(mask_path, f"mask affine does not match image {image_path}: spacing "
                                    f"{mask_geometry.spacing} vs {geometry.spacing}, origin {mask_geometry.origin} "
                                    f"vs {geometry.origin}")
    lesions = mask > 0
    if not lesions.any():
        raise InputError(mask_path, "mask is empty: no lesion voxel")
    from scipy import ndimage

    labels, _ = ndimage.label(lesions)
    return np.clip(hu, -32768, 32767).astype(np.int16), labels, geometry
