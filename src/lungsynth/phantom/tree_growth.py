"""Growing a space-filling branching tree (an artery, vein or airway) through a lung shape; the
lungs' own trees are built from it in :mod:`lungsynth.phantom.lung_trees`.

Each tree starts at its hilum and recursively splits the set of lung points it supplies:
a branch runs part of the way towards the centroid of its territory, then the territory is
cut in two across its longest axis and each half gets a child branch. Radii follow the
territory size (Murray-like ``r ~ n ** gamma``), so trunks are thick at the hilum and taper
to sub-millimetre twigs in the periphery, and the tree fills whatever lung shape it is given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Segments:
    """Tapered tube segments: ends ``a, b`` (M, 3) as (X, Y, z) mm and radii ``ra, rb`` (M,)."""

    a: np.ndarray
    b: np.ndarray
    ra: np.ndarray
    rb: np.ndarray

    @classmethod
    def concat(cls, parts: list["Segments"]) -> "Segments":
        parts = [p for p in parts if len(p.a)]
        if not parts:
            z3, z1 = np.zeros((0, 3)), np.zeros(0)
            return cls(z3, z3, z1, z1)
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("a", "b", "ra", "rb")))

    def __len__(self) -> int:
        return len(self.a)


def grow_tree(root: np.ndarray, points: np.ndarray, root_radius: float, rng: np.random.Generator,
              leaf_size: int = 2, min_radius: float = 0.35, gamma: float = 0.38,
              max_depth: int = 18) -> Segments:
    """Grow one tree from ``root`` (3,) supplying ``points`` (N, 3), all in mm.

    ``root_radius`` is the radius at the hilum; a branch supplying ``n`` of the ``N`` points
    has radius ``root_radius * (n / N) ** gamma``; growth stops at ``leaf_size`` points,
    ``min_radius`` or ``max_depth`` generations.
    """
    n_total = len(points)
    A, B, RA, RB = [], [], [], []
    if n_total == 0:
        return Segments.concat([])
    stack = [(np.asarray(root, float), points, root_radius, 0)]
    while stack:
        p, pts, r, depth = stack.pop()
        n = len(pts)
        c = pts.mean(axis=0)
        if n <= leaf_size or r < min_radius or depth >= max_depth:
            A.append(p); B.append(c); RA.append(r); RB.append(0.8 * r)
            continue
        f = rng.uniform(0.3, 0.55) if depth else rng.uniform(0.2, 0.3)
        e = p + f * (c - p)
        A.append(p); B.append(e); RA.append(r); RB.append(0.95 * r)
        centred = pts - c
        # explicit sums instead of BLAS products keep the tree identical for any thread count
        cov = np.array([[np.sum(centred[:, i] * centred[:, j]) for j in range(3)] for i in range(3)])
        _, v = np.linalg.eigh(cov)
        axis = v[:, -1] + rng.normal(0.0, 0.25, 3)
        axis /= np.sqrt(np.sum(axis * axis))
        proj = centred[:, 0] * axis[0] + centred[:, 1] * axis[1] + centred[:, 2] * axis[2]
        k = min(max(int(rng.uniform(0.35, 0.65) * n), 0), n - 1)
        left = proj <= np.partition(proj, k)[k]
        if left.all() or not left.any():
            left = proj <= np.median(proj)
            if left.all() or not left.any():
                A.append(e); B.append(c); RA.append(0.95 * r); RB.append(0.8 * r)
                continue
        for part in (pts[left], pts[~left]):
            child_r = root_radius * (len(part) / n_total) ** gamma
            stack.append((e, part, min(child_r, 0.95 * r), depth + 1))
    return Segments(np.array(A), np.array(B), np.array(RA), np.array(RB))


def sample_inside(sdf, lo: np.ndarray, hi: np.ndarray, n: int, rng: np.random.Generator,
                  depth: float = 2.0, max_rounds: int = 30) -> np.ndarray:
    """``n`` uniform points (n, 3) inside ``sdf(X, Y, z) < -depth`` within the box [lo, hi]."""
    out, have = [], 0
    for _ in range(max_rounds):
        cand = rng.uniform(lo, hi, size=(max(4 * n, 1000), 3))
        keep = cand[sdf(cand[:, 0], cand[:, 1], cand[:, 2]) < -depth]
        out.append(keep)
        have += len(keep)
        if have >= n:
            break
    pts = np.concatenate(out) if out else np.zeros((0, 3))
    return pts[:n]
