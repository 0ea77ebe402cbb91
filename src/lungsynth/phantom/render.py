"""Rendering slices of the phantom: coarse signed distances, upsampled and blended into HU.

Each chunk of slices is evaluated on a half-resolution lattice (:class:`CoarseLattice`),
upsampled 2x and thresholded at full resolution with a one-pixel antialiasing ramp, so edges
stay sharp while the expensive geometry costs a quarter of the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .anatomy import BIG, Chest, Placement
from .shapes import coverage, repeat2, upsample2


@dataclass(frozen=True)
class Tissue:
    """HU of the tissue classes of the composition."""

    air: float = -1000.0
    skin: float = 20.0
    soft: float = 40.0
    cortical: float = 750.0
    marrow: float = 230.0
    cartilage: float = 120.0
    disc: float = 85.0
    csf: float = 15.0
    liver: float = 58.0
    abdomen: float = 38.0
    vessel: float = 42.0
    airway_wall: float = 20.0


class CoarseLattice:
    """The coarse (half-resolution) in-plane lattice of the slices in chest coordinates."""

    def __init__(self, placement: Placement, size: int = 512):
        c = np.arange(size // 2, dtype=np.float32)
        self.size = size
        self.x = placement.chest_x(2 * c + 0.5)
        self.y = placement.chest_y(2 * c + 0.5)
        self.X = self.x[None, None, :]
        self.Y = self.y[None, :, None]


def culled_tubes_sdf(chest: Chest, lattice: CoarseLattice, z: np.ndarray, margin: float) -> np.ndarray:
    """Union of the mediastinal tube distances on a chunk of slices, evaluated only in each
    segment's bounding box (elsewhere the value is clamped to ``margin``). ``(nz, h, w)``."""
    nz = len(z)
    out = np.full((nz, len(lattice.y), len(lattice.x)), margin, np.float32)
    groups = list(chest.tubes.values())
    groups += [(p, r + chest.airway_wall(r)) for p, r in chest.airways.values()]
    for pts, radii in groups:
        for i in range(len(pts) - 1):
            a, b = pts[i], pts[i + 1]
            reach = max(radii[i], radii[i + 1]) + margin
            ks = np.flatnonzero((z >= min(a[2], b[2]) - reach) & (z <= max(a[2], b[2]) + reach))
            if len(ks) == 0:
                continue
            xs = np.flatnonzero((lattice.x >= min(a[0], b[0]) - reach) & (lattice.x <= max(a[0], b[0]) + reach))
            ys = np.flatnonzero((lattice.y >= min(a[1], b[1]) - reach) & (lattice.y <= max(a[1], b[1]) + reach))
            if len(xs) == 0 or len(ys) == 0:
                continue
            sub = (slice(ks[0], ks[-1] + 1), slice(ys[0], ys[-1] + 1), slice(xs[0], xs[-1] + 1))
            d = chest.tube_sdf(pts[i:i + 2], radii[i:i + 2], lattice.X[..., sub[2]], lattice.Y[:, sub[1], :],
                               z[sub[0], None, None])
            np.minimum(out[sub], d, out=out[sub])
    return out


def coarse_fields(chest: Chest, lattice: CoarseLattice, z: np.ndarray, tissue: Tissue) -> dict[str, np.ndarray]:
    """All half-resolution fields of a chunk of slices at world z ``(nz,)``.

    Signed distances (mm) for the edges that must stay sharp, and HU maps for the smooth
    interiors. Each value is ``(nz, 256, 256)`` float32.
    """
    X, Y = lattice.X, lattice.Y
    zc = z[:, None, None].astype(np.float32)
    t = chest.t_of(zc)
    p = chest.patient
    f = {}
    f["body"] = chest.body_sdf(X, Y, zc)
    f["muscle"] = chest.muscle_sdf(X, Y, zc)
    f["cage"] = chest.cage_sdf(X, Y, zc)
    tubes = culled_tubes_sdf(chest, lattice, z, margin=30.0)
    f["lung"] = chest.lung_sdf(X, Y, zc, tube_sdf=tubes)

    # soft tissue inside the cage: heart, vessels, oesophagus, airway walls, spinal canal
    soft = np.minimum(tubes, chest.ellipsoid_sdf("heart", X, Y, zc))
    soft = np.minimum(soft, chest.ellipsoid_sdf("left_atrium", X, Y, zc))
    below = chest.below_diaphragm_sdf(X, Y, zc)
    # the heart sits on the diaphragm
    soft = np.where(below > 3.0, tubes, soft)
    bone_spine, disc, canal = chest.spine_sdf(X, Y, zc)
    f["soft"] = np.minimum(np.minimum(soft, disc), canal)
    soft_hu = np.full(f["soft"].shape, tissue.soft, np.float32)
    soft_hu = np.where(disc < 0.5, tissue.disc, soft_hu)
    soft_hu = np.where(canal < 0.5, tissue.csf, soft_hu)
    f["soft_hu"] = soft_hu

    # airway lumens (trachea, main bronchi) and the stomach gas
    lumen = np.full(f["soft"].shape, BIG, np.float32)
    for pts, radii in chest.airways.values():
        lumen = np.minimum(lumen, chest.tube_sdf(pts, radii, X, Y, zc))
    a9, bf9, _ = chest.cage_axes(0.9)
    q = np.sqrt(((X - 0.45 * a9) / (26 * chest.s)) ** 2 + ((Y - 0.1 * bf9) / (20 * chest.s)) ** 2
                + ((zc - (chest.dome_top["left"] - 22)) / 12.0) ** 2)
    gas = (q - 1.0) * 12.0
    f["air"] = np.minimum(lumen, np.maximum(gas, -below + 6.0))

    # the cage is filled with mediastinal fat above the diaphragm; below it, abdominal organs
    # lie in intra-abdominal fat under the diaphragm muscle
    organ_hu = np.full(f["soft"].shape, tissue.abdomen, np.float32)
    organs = np.full(f["soft"].shape, BIG, np.float32)
    for name, (_, _, _, hu) in chest.abdomen.items():
        d = chest.ellipsoid_sdf(name, X, Y, zc)
        organ_hu = np.where(d < organs, hu, organ_hu)
        organs = np.minimum(organs, d)
    organs = np.maximum(organs, 3.0 - below)
    f["soft_hu"] = np.where(organs < f["soft"], organ_hu, f["soft_hu"])
    f["soft"] = np.minimum(f["soft"], organs)
    f["fill_hu"] = np.where(below > 0, p.fat_hu + 5.0, p.fat_hu + 10.0).astype(np.float32)

    ribs, cart = chest.rib_sdf(X, Y, zc)
    bone = np.minimum(ribs, bone_spine)
    bone = np.minimum(bone, chest.sternum_sdf(X, Y, zc))
    bone = np.minimum(bone, chest.scapula_sdf(X, Y, zc))
    f["bone"] = bone
    f["cartilage"] = cart

    # lung parenchyma: denser towards the back (gravity)
    _, _, bb = chest.cage_axes(t)
    grav = np.clip((Y / bb + 1.0) / 2.0, 0, 1) ** 2
    f["lung_hu"] = (p.lung_hu + p.gravity_hu * grav).astype(np.float32)
    shape = (len(z), len(lattice.y), len(lattice.x))
    return {k: np.ascontiguousarray(np.broadcast_to(np.asarray(v, np.float32), shape)) for k, v in f.items()}


def table_coverage(x: np.ndarray, y: np.ndarray, chest: Chest) -> np.ndarray:
    """Coverage of the patient table under the back (two thin curved shells) on the full
    resolution grid with chest coordinates ``x`` (W,) and ``y`` (H,); ``(H, W)``."""
    back = float(chest.body_axes(0.6)[2]) + 4.0
    X = x[None, :]
    Y = y[:, None]
    curve = back + 0.0012 * X * X
    d = np.minimum(np.abs(Y - curve - 2.0) - 1.8, np.abs(Y - curve - 32.0) - 1.5)
    inside = np.abs(X) < 215
    alpha = np.where(inside, coverage(d, chest.ps), 0.0)
    return alpha.astype(np.float32)


def render_slices(chest: Chest, lattice: CoarseLattice, trees, z: np.ndarray, thickness: float,
                  tissue: Tissue, table: np.ndarray):
    """HU of slices at world ``z`` before nodules and noise, plus lung and body coverage.

    ``trees`` are the :class:`lungsynth.phantom.lung_trees.TubeFields`. Tissues are blended
    in painter's order (air, table, fat, skin, muscle, cage filling, soft organs, cartilage,
    bone, airway lumens, lungs, then vessels and bronchi), each with its antialiased
    coverage. Returns ``(hu, lung_alpha, body_alpha)``, each float32 ``(nz, 512, 512)``.
    """
    p = chest.patient
    w = chest.ps  # antialiasing ramp: one fine pixel
    f = coarse_fields(chest, lattice, z, tissue)
    nz = len(z)
    tube = {name: np.zeros((nz,) + f["body"].shape[1:], np.float32)
            for name in ("vessel", "airway_wall", "airway_lumen", "texture")}
    for i, zi in enumerate(z):
        for name, v in trees.slab(float(zi), thickness).items():
            tube[name][i, trees.rows, trees.cols] = v

    body = coverage(upsample2(f["body"]), w)
    hu = np.full(body.shape, tissue.air, np.float32)
    hu += table[None] * (150.0 - hu)
    hu += body * (p.fat_hu - hu)
    skin = coverage(upsample2(f["body"] + 1.5), w)
    hu += (body - skin).clip(0, 1) * (tissue.skin - hu)

    def blend(alpha, value):
        nonlocal hu
        hu += alpha * (value - hu)

    blend(coverage(upsample2(f["muscle"]), w), p.muscle_hu)
    cage = coverage(upsample2(f["cage"]), w)
    blend(cage, repeat2(f["fill_hu"]))
    soft = coverage(upsample2(f["soft"]), w)
    blend(soft, repeat2(f["soft_hu"]))
    blend(coverage(upsample2(f["cartilage"]), w), tissue.cartilage)
    bone_sdf = upsample2(f["bone"])
    bone = coverage(bone_sdf, w)
    blend(bone, np.where(bone_sdf > -1.4, tissue.cortical, tissue.marrow))
    air = coverage(upsample2(f["air"]), w)
    blend(air, tissue.air)
    lung = coverage(upsample2(f["lung"]), w)
    lung_hu = repeat2(f["lung_hu"]) + 18.0 * upsample2(tube["texture"])
    blend(lung, lung_hu)
    # trees: inside the cage, never over bone or the airway lumens
    where = cage * (1.0 - bone) * (1.0 - air)
    blend(where * upsample2(tube["vessel"]), tissue.vessel)
    blend(where * upsample2(tube["airway_wall"]), tissue.airway_wall)
    blend(where * upsample2(tube["airway_lumen"]), tissue.air)
    return hu, lung, body
