"""The vessel and airway trees of the two lungs and the parenchyma texture, on a coarse 3D grid.

Arteries start at the ends of the pulmonary arteries, veins at the pulmonary veins and
airways at the main bronchi (all from :mod:`lungsynth.phantom.anatomy`), and each grows
through its own lung (:func:`lungsynth.phantom.tree_growth.grow_tree`). Their occupancy is
rasterised once on a coarse grid; each slice then averages the grid over its thickness,
which is the partial-volume effect of a thick CT slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .anatomy import Chest
from .shapes import TubeGrid, rasterize_tubes
from .tree_growth import Segments, grow_tree, sample_inside

VESSEL_POINTS_PER_ML = 0.9  # territory samples per ml of lung and tree: sets the number of twigs


def bronchial_outer_radius(lumen_radius):
    """Outer radius of a small bronchus (its wall is about a fifth of the lumen, +0.5 mm)."""
    return 1.2 * np.asarray(lumen_radius) + 0.5


@dataclass
class TubeFields:
    """Coarse 3D fields of the lung trees on a :class:`TubeGrid` sub-window of the lattice."""

    grid: TubeGrid
    rows: slice              # where the grid sits in the coarse lattice
    cols: slice
    vessel: np.ndarray
    airway_wall: np.ndarray
    airway_lumen: np.ndarray
    texture: np.ndarray

    def slab(self, z: float, thickness: float) -> dict[str, np.ndarray]:
        """Fields averaged over the slice slab ``[z - T/2, z + T/2]`` (the slice profile)."""
        zs = self.grid.axis(0)
        dz = self.grid.spacing[0]
        lo, hi = z - thickness / 2, z + thickness / 2
        overlap = np.clip(np.minimum(zs + dz / 2, hi) - np.maximum(zs - dz / 2, lo), 0, None)
        idx = np.flatnonzero(overlap > 0)
        out = {}
        for name in ("vessel", "airway_wall", "airway_lumen", "texture"):
            field = getattr(self, name)
            if len(idx) == 0:
                out[name] = np.zeros(field.shape[1:], np.float32)
                continue
            w = overlap[idx] / overlap[idx].sum()
            acc = np.zeros(field.shape[1:], np.float32)
            for i, wi in zip(idx, w):  # a plain sum, not BLAS: same bytes whatever the threads
                acc += np.float32(wi) * field[i]
            out[name] = acc
        return out


def lung_trees(chest: Chest, lattice, zvals: np.ndarray, thickness: float,
               rng: np.random.Generator) -> TubeFields:
    """Grow arteries, veins and airways in both lungs and rasterise them (with a smooth
    parenchyma texture) on a coarse 3D grid that covers the lungs within the scan.

    ``lattice`` is the slices' :class:`lungsynth.phantom.render.CoarseLattice`; the grid is a
    window of it in-plane (twice the pixel spacing) and 0.5-1 mm in z. The trees are grown
    for the whole lungs, also where the scan does not reach, so every scan of a patient
    would see the same trees.
    """
    s = chest.s
    z_base = chest.z_apex - chest.height
    a_max = float(chest.cage_axes(0.8)[0])
    _, bf, bb = (float(v) for v in chest.cage_axes(1.0))
    lo = np.array([-a_max - 5, -bf - 5, z_base - 5])
    hi = np.array([a_max + 5, bb + 5, chest.z_apex + 5])
    box_volume_ml = float(np.prod(hi - lo)) / 1000.0

    probe = rng.uniform(lo, hi, size=(20000, 3))
    frac = float(np.mean(chest.lung_sdf(probe[:, 0], probe[:, 1], probe[:, 2]) < 0))
    lung_ml = max(frac * box_volume_ml, 500.0)

    def lung_of(side):
        return lambda X, Y, z: np.where(chest.lung_side(X) == side, chest.lung_sdf(X, Y, z), 1e4)

    tubes, airways = chest.tubes, chest.airways
    roots = {
        ("artery", -1): (tubes["right_pa"][0][-1], tubes["right_pa"][1][-1]),
        ("artery", 1): (tubes["left_pa"][0][-1], tubes["left_pa"][1][-1]),
        ("vein", -1): (tubes["right_veins"][0][0], tubes["right_veins"][1][0]),
        ("vein", 1): (tubes["left_veins"][0][0], tubes["left_veins"][1][0]),
        ("airway", -1): (airways["right_main_bronchus"][0][-1], airways["right_main_bronchus"][1][-1]),
        ("airway", 1): (airways["left_main_bronchus"][0][-1], airways["left_main_bronchus"][1][-1]),
    }
    vessels, aw = [], []
    for side in (-1, 1):
        share = 0.53 if side == -1 else 0.47  # the right lung is larger
        n_vessel = int(np.clip(lung_ml * share * VESSEL_POINTS_PER_ML, 400, 3500))
        for kind in ("artery", "vein"):
            pts = sample_inside(lung_of(side), lo, hi, n_vessel, rng, depth=2.0)
            root, r0 = roots[(kind, side)]
            vessels.append(grow_tree(root, pts, float(r0), rng, leaf_size=2, min_radius=0.45 * s, gamma=0.33))
        pts = sample_inside(lung_of(side), lo, hi, 90, rng, depth=6.0)
        root, r0 = roots[("airway", side)]
        aw.append(grow_tree(root, pts, float(r0), rng, leaf_size=1, min_radius=0.9 * s, gamma=0.32))
    vessels = Segments.concat(vessels)
    aw = Segments.concat(aw)

    # the grid: a window of the coarse lattice around the cage, 1 mm (or the slice spacing) in z
    spacing_z = float(np.clip(np.median(np.diff(zvals)), 0.5, 1.0))
    z0 = max(zvals[0] - thickness, z_base - 10.0)
    z1 = min(zvals[-1] + thickness, chest.z_apex + 10.0)
    cols = np.flatnonzero((lattice.x >= lo[0]) & (lattice.x <= hi[0]))
    rows = np.flatnonzero((lattice.y >= lo[1]) & (lattice.y <= hi[1]))
    if z1 <= z0 or len(cols) == 0 or len(rows) == 0:  # the scan misses the lungs
        cols = rows = np.arange(1)
        z0, z1 = zvals[0], zvals[0] + spacing_z
    nz = int(np.ceil((z1 - z0) / spacing_z)) + 1
    grid = TubeGrid(origin=(float(z0), float(lattice.y[rows[0]]), float(lattice.x[cols[0]])),
                    spacing=(spacing_z, 2 * chest.ps, 2 * chest.ps),
                    shape=(nz, len(rows), len(cols)))
    vessel = rasterize_tubes(grid, vessels.a, vessels.b, vessels.ra, vessels.rb)
    wall = rasterize_tubes(grid, aw.a, aw.b, bronchial_outer_radius(aw.ra), bronchial_outer_radius(aw.rb))
    lumen = rasterize_tubes(grid, aw.a, aw.b, aw.ra, aw.rb)
    texture = rng.standard_normal(grid.shape, dtype=np.float32)
    texture = ndimage.gaussian_filter(texture, sigma=(1.5 / spacing_z, 0.9, 0.9))
    texture /= max(float(texture.std()), 1e-6)
    return TubeFields(grid, slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1),
                      vessel, wall, lumen, texture)
