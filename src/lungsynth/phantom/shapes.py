"""Geometric primitives of the phantom: signed distances, tubes, and the 2x in-plane upsampling.

The anatomy is described by smooth implicit functions (signed distances in mm, negative
inside) evaluated on a coarse grid (half the in-plane resolution) and upsampled linearly; a
smooth field survives linear upsampling, so thresholding it at full resolution gives crisp
edges at a quarter of the cost. Thin tubes (vessels, airways) are rasterised as occupancy
fractions on a coarse 3D grid instead, because they are thinner than a coarse voxel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def profile(t, knots, values):
    """Piecewise-linear profile along the normalised chest height ``t`` (constant outside)."""
    return np.interp(t, knots, values)


def smoothstep(edge0: float, edge1: float, x):
    """0 below ``edge0``, 1 above ``edge1``, a C1 ramp in between (works for edge0 > edge1)."""
    u = np.clip((np.asarray(x, dtype=np.float32) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def smooth_min(a, b, k: float):
    """Polynomial smooth minimum (union of two signed distances with a fillet of size ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b + (a - b) * h - k * h * (1.0 - h)


def superellipse_radius(theta, a, b_front, b_back, p: float, p_back: float | None = None):
    """Radius of a superellipse along direction ``theta`` (``atan2(Y, X)``).

    The half-axis along Y is ``b_front`` for Y < 0 (anterior) and ``b_back`` for Y > 0, and
    the exponent may differ at the back (``p_back`` > 2 flattens it), so one shape gives the
    flat back and rounder front of a chest.
    """
    c = np.abs(np.cos(theta))
    s = np.sin(theta)
    back = s >= 0
    b = np.where(back, b_back, b_front)
    if p_back is None or p_back == p:
        return 1.0 / ((c / a) ** p + (np.abs(s) / b) ** p) ** (1.0 / p)
    q = np.where(back, p_back, p)
    return 1.0 / ((c / a) ** q + (np.abs(s) / b) ** q) ** (1.0 / q)


def upsample2(a: np.ndarray) -> np.ndarray:
    """Linear 2x upsampling of the last two axes, cell-centred.

    Coarse cell ``c`` covers fine cells ``2c`` and ``2c + 1`` (the same values as
    ``scipy.ndimage.zoom(order=1, grid_mode=True, mode='nearest')``, twice as fast);
    edges are replicated. ``(..., H, W) -> (..., 2H, 2W)``, float32.
    """
    a = np.asarray(a, dtype=np.float32)
    return _upsample_axis(_upsample_axis(a, a.ndim - 2), a.ndim - 1)


def _upsample_axis(x: np.ndarray, axis: int) -> np.ndarray:
    shape = list(x.shape)
    shape[axis] *= 2
    out = np.empty(shape, np.float32)

    def sl(part, ax=axis):
        index = [slice(None)] * x.ndim
        index[ax] = part
        return tuple(index)

    even, odd = out[sl(slice(0, None, 2))], out[sl(slice(1, None, 2))]
    np.multiply(x, 0.75, out=even)
    np.multiply(x, 0.75, out=odd)
    quarter = 0.25 * x
    even[sl(slice(1, None))] += quarter[sl(slice(None, -1))]
    even[sl(0)] += quarter[sl(0)]
    odd[sl(slice(None, -1))] += quarter[sl(slice(1, None))]
    odd[sl(-1)] += quarter[sl(-1)]
    return out


def repeat2(a: np.ndarray) -> np.ndarray:
    """Nearest 2x upsampling of the last two axes (for smooth HU maps used under masks)."""
    a = np.asarray(a, dtype=np.float32)
    return np.repeat(np.repeat(a, 2, axis=-2), 2, axis=-1)


def coverage(sdf, width):
    """Fraction of a voxel inside a shape from its signed distance: a linear ramp of
    ``width`` mm centred on the boundary (cheap partial-volume antialiasing)."""
    return np.clip(0.5 - sdf / width, 0.0, 1.0)


@dataclass(frozen=True)
class TubeGrid:
    """A coarse, axis-aligned 3D grid (z, y, x) in chest coordinates (mm) for thin tubes.

    ``origin`` is the (z, y, x) position of voxel (0, 0, 0) and ``spacing`` the voxel size.
    """

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]

    def axis(self, n: int) -> np.ndarray:
        return self.origin[n] + self.spacing[n] * np.arange(self.shape[n])


def rasterize_tubes(grid: TubeGrid, a: np.ndarray, b: np.ndarray, ra: np.ndarray, rb: np.ndarray,
                    out: np.ndarray | None = None) -> np.ndarray:
    """Occupancy (0..1) of a union of tapered tubes (capsules) on ``grid``.

    ``a, b`` (M, 3) segment end points as (X, Y, z) mm, ``ra, rb`` (M,) radii at the ends.
    The boundary is antialiased over one in-plane voxel. Segments are processed in batches
    of equal patch size, so thousands of small segments cost a few vectorised operations
    rather than thousands of Python iterations. Returns float32 ``grid.shape``.
    """
    if out is None:
        out = np.zeros(grid.shape, dtype=np.float32)
    if len(a) == 0:
        return out
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ra = np.asarray(ra, np.float64)
    rb = np.asarray(rb, np.float64)
    sz, sy, sx = grid.spacing
    oz, oy, ox = grid.origin
    width = max(sx, sy)
    rmax = np.maximum(ra, rb) + width
    # bounding boxes in voxel index space, (M, 3) in (z, y, x) order
    lo_xyz = np.minimum(a, b) - rmax[:, None]
    hi_xyz = np.maximum(a, b) + rmax[:, None]
    org = np.array([ox, oy, oz])
    spc = np.array([sx, sy, sz])
    lo = np.floor((lo_xyz - org) / spc).astype(int)[:, ::-1]
    hi = np.ceil((hi_xyz - org) / spc).astype(int)[:, ::-1] + 1
    shape = np.array(grid.shape)
    lo = np.clip(lo, 0, shape)
    hi = np.clip(hi, 0, shape)
    ext = hi - lo
    keep = np.all(ext > 0, axis=1)
    # bucket the patch extents to a few sizes so each bucket is one array operation
    buckets = 2 ** np.ceil(np.log2(np.maximum(ext, 1))).astype(int)
    keys = buckets[:, 0] * 1_000_000 + buckets[:, 1] * 1000 + buckets[:, 2]
    for key in np.unique(keys[keep]):
        idx = np.flatnonzero(keep & (keys == key))
        pz, py, px = buckets[idx[0]]
        per = max(1, int(4_000_000 // (pz * py * px)))
        for start in range(0, len(idx), per):
            chunk = idx[start:start + per]
            l0 = lo[chunk]
            zz = oz + sz * (l0[:, 0, None] + np.arange(pz))[:, :, None, None]
            yy = oy + sy * (l0[:, 1, None] + np.arange(py))[:, None, :, None]
            xx = ox + sx * (l0[:, 2, None] + np.arange(px))[:, None, None, :]
            A = a[chunk]
            AB = b[chunk] - A
            denom = np.maximum((AB * AB).sum(1), 1e-9)
            dx = xx - A[:, 0, None, None, None]
            dy = yy - A[:, 1, None, None, None]
            dz = zz - A[:, 2, None, None, None]
            t = (dx * AB[:, 0, None, None, None] + dy * AB[:, 1, None, None, None]
                 + dz * AB[:, 2, None, None, None]) / denom[:, None, None, None]
            t = np.clip(t, 0.0, 1.0)
            ex = dx - t * AB[:, 0, None, None, None]
            ey = dy - t * AB[:, 1, None, None, None]
            ez = dz - t * AB[:, 2, None, None, None]
            d = np.sqrt(ex * ex + ey * ey + ez * ez)
            r = ra[chunk, None, None, None] + t * (rb - ra)[chunk, None, None, None]
            occ = np.clip(0.5 + (r - d) / width, 0.0, 1.0).astype(np.float32)
            for m, seg in enumerate(chunk):
                z0, y0, x0 = lo[seg]
                z1, y1, x1 = hi[seg]
                view = out[z0:z1, y0:y1, x0:x1]
                np.maximum(view, occ[m, : z1 - z0, : y1 - y0, : x1 - x0], out=view)
    return out
