import pandas as pd
import pytest

from lungsynth.errors import InputError
from lungsynth.lidc.annotations import NoduleCriteria
from lungsynth.selection import eligible_scans, select_phantom


def _table():
    rows = [
        # patient, scan, nodule, readers, diameter, slices
        ("P1", 1, 0, 4, 12.0, 90), ("P1", 2, 0, 4, 20.0, 90),   # two scans of one patient
        ("P2", 3, 0, 1, 2.0, 80),                                # too small
        ("P3", 4, 0, 3, 6.0, 300), ("P3", 4, 1, 1, 11.0, 300),   # too many slices for the phantom
        ("P4", 5, 0, 2, 15.0, 110),
    ]
    return pd.DataFrame(rows, columns=["patient_id", "scan_id", "nodule", "n_readers", "diameter_mm", "n_slices"])


def test_one_scan_per_patient_with_a_qualifying_nodule():
    scans = eligible_scans(_table(), NoduleCriteria(3.0, 1))
    assert list(scans.case) == ["P1", "P3", "P4"]
    assert scans.set_index("case").loc["P1", "scan_id"] == 1
    assert scans.set_index("case").loc["P3", "n_nodules"] == 2


def test_phantom_selection_respects_slices_and_nodule_size():
    chosen = select_phantom(_table(), NoduleCriteria(3.0, 1), n_scans=2, max_slices=120, min_nodule_mm=10, seed=0)
    assert list(chosen.case) == ["P1", "P4"]


def test_phantom_selection_explains_when_too_few_scans_qualify():
    with pytest.raises(InputError, match="only 2 LIDC scans"):
        select_phantom(_table(), NoduleCriteria(3.0, 1), n_scans=3, max_slices=120, min_nodule_mm=10, seed=0)
