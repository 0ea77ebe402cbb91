"""Crop at the lungs and resample to a fixed grid, in one resampling step per volume.

The output grid is ``volume_size`` voxels of ``target_spacing`` mm, centred on the box that
holds the lungs and every nodule, with the source's orientation. Building the grid first and
resampling once avoids a crop, a resample and a pad/crop that could each shift the affine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from ..io import Geometry, to_image

AIR_HU = -1024


@dataclass(frozen=True)
class Crop:
    """The output grid and how much of the region of interest it holds."""

    geometry: Geometry
    size_zyx: tuple[int, int, int]
    box_zyx: tuple[tuple[int, int], ...]      # region of interest in source voxels, [start, stop)
    coverage: float                           # fraction of that region inside the output grid


def crop_grid(source: Geometry, box_zyx, margin_mm: float, target_spacing_zyx, volume_size_zyx) -> Crop:
    """The fixed-size output grid centred on ``box_zyx`` (source voxels) grown by ``margin_mm``."""
    spacing_xyz = np.asarray(source.spacing, float)
    (z0, z1), (y0, y1), (x0, x1) = box_zyx
    centre_index_xyz = np.array([(x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2, (z0 + z1 - 1) / 2])
    centre = source.index_to_physical(centre_index_xyz)
    target_xyz = np.asarray(target_spacing_zyx, float)[::-1]
    size_xyz = np.asarray(volume_size_zyx, int)[::-1]
    direction = np.asarray(source.direction).reshape(3, 3)
    origin = centre - direction @ ((size_xyz - 1) / 2 * target_xyz)
    geometry = Geometry(tuple(target_xyz), tuple(float(v) for v in origin), source.direction)

    extent_xyz = (np.array([x1 - x0, y1 - y0, z1 - z0]) * spacing_xyz) + 2 * margin_mm
    coverage = float(np.prod(np.minimum(1.0, size_xyz * target_xyz / extent_xyz)))
    return Crop(geometry, tuple(int(v) for v in volume_size_zyx), tuple(map(tuple, box_zyx)), coverage)


def _resample(image: sitk.Image, crop: Crop, interpolator, default: float) -> np.ndarray:
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(v) for v in crop.size_zyx[::-1]])
    resampler.SetOutputSpacing(crop.geometry.spacing)
    resampler.SetOutputOrigin(crop.geometry.origin)
    resampler.SetOutputDirection(crop.geometry.direction)
    resampler.SetInterpolator(interpolator)
    resampler.SetDefaultPixelValue(default)
    return sitk.GetArrayFromImage(resampler.Execute(image))


def _antialias(image: sitk.Image, target_spacing_xyz) -> sitk.Image:
    """Blur before downsampling so each output voxel averages the source voxels it covers.

    sigma = sqrt(target^2 - source^2) / sqrt(12) per axis: the spread of a box one output voxel
    wide, less what the source voxels already average.
    """
    source = np.asarray(image.GetSpacing(), float)
    target = np.asarray(target_spacing_xyz, float)
    sigma = np.sqrt(np.maximum(target**2 - source**2, 0.0)) / np.sqrt(12.0)
    if not sigma.any():
        return image
    return sitk.DiscreteGaussian(image, variance=[float(s * s) for s in sigma],
                                 maximumKernelWidth=64, useImageSpacing=True)


def resample_image(hu: np.ndarray, source: Geometry, crop: Crop) -> np.ndarray:
    """HU volume ``(z, y, x)`` on the crop grid (linear, anti-aliased, air outside), int16."""
    image = _antialias(to_image(hu.astype(np.float32), source), crop.geometry.spacing)
    out = _resample(image, crop, sitk.sitkLinear, AIR_HU)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def resample_mask(mask: np.ndarray, source: Geometry, crop: Crop) -> np.ndarray:
    """Binary mask on the crop grid that keeps each nodule's volume (:func:`keep_partial_volume`).

    The mask is averaged like the image (anti-aliased, linear), which gives each output voxel the
    share of it the nodule covers. Thresholding that at one half shrinks small nodules (a 1.4 cm^3
    lesion kept 69 % of its volume on a 3 x 3 x 5 mm grid) and drops those under half a voxel.
    """
    image = _antialias(to_image(mask.astype(np.float32), source), crop.geometry.spacing)
    return keep_partial_volume(_resample(image, crop, sitk.sitkLinear, 0.0))


def keep_partial_volume(partial: np.ndarray, floor: float = 0.01) -> np.ndarray:
    """A 0/1 mask from partial volumes in [0, 1]: per connected component (of voxels above
    ``floor``), the N voxels of highest partial volume, N = the component's partial-volume sum
    rounded, at least 1 (so no nodule is lost, and each keeps its volume to within a voxel)."""
    labels, count = ndimage.label(partial > floor)
    out = np.zeros(partial.shape, np.uint8)
    for index, box in enumerate(ndimage.find_objects(labels), start=1):
        inside = labels[box] == index
        values = partial[box][inside]
        keep = max(1, int(round(float(values.sum()))))
        chosen = np.zeros(values.shape, bool)
        chosen[np.argsort(-values, kind="stable")[:keep]] = True
        region = out[box]
        region[inside] = chosen
    return out


def sphere_volume_kept(diameter_mm: float, target_spacing_zyx, rng: np.random.Generator,
                       source_spacing_zyx=(1.0, 0.7, 0.7), threshold: float | None = None) -> tuple[float, float]:
    """What :func:`resample_mask` keeps of a sphere at a random sub-voxel position in a fine source
    volume: ``(source mm^3, output mm^3)``. ``threshold``: the former rule (partial volume >= it)
    instead, for comparison (tests/preprocess/test_grid.py; docs/findings.md row 24)."""
    side_mm = diameter_mm + 8 * max(target_spacing_zyx)
    shape = tuple(int(np.ceil(side_mm / s)) for s in source_spacing_zyx)
    centre = (np.asarray(shape) - 1) / 2 + rng.uniform(-0.5, 0.5, 3)
    grids = np.indices(shape, dtype=float)
    distance2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grids, centre, source_spacing_zyx))
    mask = (distance2 <= (diameter_mm / 2) ** 2).astype(np.uint8)
    source = Geometry(tuple(float(s) for s in source_spacing_zyx[::-1]), tuple(rng.uniform(-3, 3, 3)))
    size = tuple(int(np.ceil(side_mm / s)) + 1 for s in target_spacing_zyx)
    crop = crop_grid(source, [(0, n) for n in shape], 0.0, target_spacing_zyx, size)
    if threshold is None:
        out = resample_mask(mask, source, crop)
    else:
        image = _antialias(to_image(mask.astype(np.float32), source), crop.geometry.spacing)
        out = _resample(image, crop, sitk.sitkLinear, 0.0) >= threshold
    return float(mask.sum() * np.prod(source_spacing_zyx)), float(out.sum() * np.prod(target_spacing_zyx))
