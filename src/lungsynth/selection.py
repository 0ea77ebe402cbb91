"""Which scans become cases: one scan per patient with at least one qualifying nodule."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .errors import InputError
from .lidc.annotations import NoduleCriteria

log = logging.getLogger(__name__)

SELECTION_COLUMNS = ["case", "patient_id", "scan_id", "n_nodules", "largest_nodule_mm", "n_slices"]


def equivalent_diameter_mm(volume_mm3):
    """Diameter of the sphere of that volume: a size that, unlike the readers' longest axial
    diameter, says how many voxels a nodule fills on a coarse grid."""
    return np.cbrt(6.0 * np.asarray(volume_mm3, float) / np.pi)


def eligible_scans(nodules: pd.DataFrame, criteria: NoduleCriteria) -> pd.DataFrame:
    """Per scan with a qualifying nodule: its patient, nodule count, largest nodule, slice count.

    ``largest_nodule_mm`` is the largest equivalent-sphere diameter of a nodule (from the
    readers' mean volume). Only the first such scan (lowest scan id) of each patient is kept, so
    a case is a patient and the patient-level split is a case-level split.
    """
    ok = nodules[(nodules.n_readers >= criteria.min_readers) & (nodules.diameter_mm >= criteria.min_mm)]
    ok = ok.assign(equivalent_mm=equivalent_diameter_mm(ok.volume_mm3))
    per_scan = (ok.groupby(["patient_id", "scan_id"], as_index=False)
                  .agg(n_nodules=("nodule", "size"), largest_nodule_mm=("equivalent_mm", "max"),
                       n_slices=("n_slices", "first")))
    per_scan = per_scan.sort_values("scan_id").drop_duplicates("patient_id", keep="first")
    per_scan.insert(0, "case", per_scan.patient_id)
    return per_scan.sort_values("case").reset_index(drop=True)[SELECTION_COLUMNS]


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    if n and n < len(frame):
        order = np.random.default_rng(seed).permutation(len(frame))[:n]
        frame = frame.iloc[np.sort(order)]
    return frame.sort_values("case").reset_index(drop=True)


def select_phantom(nodules: pd.DataFrame, criteria: NoduleCriteria, n_scans: int, max_slices: int,
                   min_nodule_mm: float, seed: int) -> pd.DataFrame:
    """``n_scans`` scans (seeded) with at most ``max_slices`` slices and a nodule whose equivalent-sphere
    diameter is >= ``min_nodule_mm``.

    Few slices keep the phantom DICOM small (every slice is a full 512 x 512 image).
    """
    scans = eligible_scans(nodules, criteria)
    scans = scans[(scans.largest_nodule_mm >= min_nodule_mm) & ((max_slices <= 0) | (scans.n_slices <= max_slices))]
    if len(scans) < n_scans:
        raise InputError("phantom", f"only {len(scans)} LIDC scans have <= {max_slices} slices and a nodule >= "
                                    f"{min_nodule_mm:g} mm; asked for n_scans = {n_scans}")
    return _sample(scans, n_scans, seed)


def select_lidc(nodules: pd.DataFrame, criteria: NoduleCriteria, lidc_root, max_cases: int, seed: int) -> pd.DataFrame:
    """The eligible scans whose patient folder exists under the LIDC-IDRI download ``lidc_root``
    (any layout :func:`lungsynth.lidc.layout.patient_root` accepts).

    A download of some of the patients is normal (TCIA lets one pick); the patients with a
    qualifying nodule that are not there are logged with the root. None of them there is an error.
    """
    from .lidc.layout import present_patients

    scans = eligible_scans(nodules, criteria)
    root, present, missing = present_patients(lidc_root, scans.patient_id)
    if not present:
        raise InputError(root, f"holds none of the {len(scans)} LIDC-IDRI patients with a qualifying nodule "
                               f"(e.g. {', '.join(missing[:3])})")
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        log.warning("%s: %d of the %d LIDC-IDRI patients with a qualifying nodule are there; missing: %s",
                    root, len(present), len(scans), shown)
    return _sample(scans[scans.patient_id.isin(present)], max_cases, seed)


def select_nifti(pairs, max_cases: int, seed: int) -> pd.DataFrame:
    """The user's cases (from :func:`lungsynth.nifti.source.pair_cases`); patient = case."""
    frame = pd.DataFrame({"case": [c for c, _, _ in pairs], "patient_id": [c for c, _, _ in pairs],
                          "image": [str(i) for _, i, _ in pairs], "mask": [str(m) for _, _, m in pairs]})
    return _sample(frame, max_cases, seed)
