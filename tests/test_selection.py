import numpy as np
import pandas as pd
import pytest

from lungsynth.errors import InputError
from lungsynth.lidc.annotations import NoduleCriteria
from lungsynth.selection import eligible_scans, select_phantom


def _sphere(d):
    return np.pi / 6 * d**3


def _table():
    rows = [
        # patient, scan, nodule, readers, diameter, volume, slices
        ("P1", 1, 0, 4, 12.0, _sphere(12), 90), ("P1", 2, 0, 4, 20.0, _sphere(20), 90),  # two scans of one patient
        ("P2", 3, 0, 1, 2.0, _sphere(2), 80),                                           # too small
        ("P3", 4, 0, 3, 6.0, _sphere(6), 300), ("P3", 4, 1, 1, 11.0, _sphere(11), 300),  # too many slices
        ("P4", 5, 0, 2, 15.0, _sphere(15), 110),
        ("P5", 6, 0, 2, 14.0, _sphere(5), 100),   # long but thin: 14 mm across, the volume of a 5 mm sphere
    ]
    return pd.DataFrame(rows, columns=["patient_id", "scan_id", "nodule", "n_readers", "diameter_mm", "volume_mm3",
                                       "n_slices"])


def test_one_scan_per_patient_with_a_qualifying_nodule():
    scans = eligible_scans(_table(), NoduleCriteria(3.0, 1))
    assert list(scans.case) == ["P1", "P3", "P4", "P5"]
    assert scans.set_index("case").loc["P1", "scan_id"] == 1
    assert scans.set_index("case").loc["P3", "n_nodules"] == 2


def test_phantom_selection_sizes_nodules_by_their_volume_not_their_longest_diameter():
    chosen = select_phantom(_table(), NoduleCriteria(3.0, 1), n_scans=2, max_slices=120, min_nodule_mm=10, seed=0)
    assert "P5" not in set(chosen.case)


def test_phantom_selection_respects_slices_and_nodule_size():
    chosen = select_phantom(_table(), NoduleCriteria(3.0, 1), n_scans=2, max_slices=120, min_nodule_mm=10, seed=0)
    assert list(chosen.case) == ["P1", "P4"]


def test_phantom_selection_explains_when_too_few_scans_qualify():
    with pytest.raises(InputError, match="only 2 LIDC scans"):
        select_phantom(_table(), NoduleCriteria(3.0, 1), n_scans=3, max_slices=120, min_nodule_mm=10, seed=0)
